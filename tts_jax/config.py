"""Defaults every training config starts from (ml_collections ConfigDicts, configs as data).

An experiment file ``experiments/NAME.py`` defines ``get_config(variant)`` returning
``base_config()`` with its model section and overrides. A run is::

    tts-jax train --config experiments/NAME.py:VARIANT --workdir DIR [--config.a.b=value ...]
"""

from __future__ import annotations

from ml_collections import ConfigDict, config_dict


def check_variant(variant: str, intended_use: dict[str, str]) -> None:
    """A config file's ``get_config(variant)`` accepts the keys of its ``INTENDED_USE``."""
    if variant not in intended_use:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(intended_use)}")


def base_config() -> ConfigDict:
    c = ConfigDict()
    c.seed = 0

    c.data = ConfigDict()
    # An LJSpeech-format folder (the embedded corpus or LJSpeech-1.1), or "tfds:ljspeech".
    c.data.path = "runs/corpus"
    c.data.tfds_data_dir = config_dict.placeholder(str)  # default: DATA_PATH/tfds
    c.data.split_fractions = (0.95, 0.025, 0.025)  # train / validation / test by id hash
    c.data.sample_rate = 22050
    c.data.n_fft = 1024
    c.data.hop_length = 256
    c.data.win_length = 1024
    c.data.n_mels = 80
    c.data.fmin = 0.0
    c.data.fmax = 8000.0
    c.data.num_buckets = 8  # padded shapes (= jit compilations) for text-to-mel batches
    c.data.max_frames = 1000  # longer training utterances are skipped
    c.data.prefetch = 2
    c.data.text = ConfigDict(
        {"frontend": "chars", "cleaners": "english", "unknown": "error", "voice": "en-us"}
    )

    c.train = ConfigDict()
    c.train.num_steps = 1000
    c.train.batch_size = 16  # global, split over every device of every host
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 3
    c.train.log_every = 10
    c.train.eval_every = 500
    c.train.eval_batches = 4  # 0: the whole validation split
    c.train.progress = True
    c.train.max_minutes = 0.0  # > 0: checkpoint and stop after this much wall time
    # Non-finite loss or gradient: the update is skipped (counted as "skipped"); this many in
    # a row stop the run with an error, nothing non-finite saved.
    c.train.max_skipped_steps = 20
    # "bfloat16": mixed precision, bf16 compute over float32 parameters and optimiser state
    # (tts_jax/train/precision.py); evaluation and inference stay float32.
    c.train.compute_dtype = "float32"

    c.optim = ConfigDict()
    c.optim.name = "adam"  # adam | adamw
    c.optim.learning_rate = 1e-3
    # constant | exponential (see tts_jax.train.optim.make_schedule)
    c.optim.schedule = "constant"
    c.optim.decay_begin = 0
    c.optim.decay_steps = 1
    c.optim.decay_rate = 1.0
    c.optim.staircase = False
    c.optim.final_learning_rate = 0.0
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0
    c.optim.grad_clip_norm = 0.0  # 0 disables clipping

    c.model = ConfigDict()
    c.model.family = ""
    return c
