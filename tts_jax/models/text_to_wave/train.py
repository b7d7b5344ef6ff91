"""Text-to-wave in the shared trainer: text-mel batches with their audio, one optimiser over
all three parts, the window NLL beside Tacotron 2's losses.

A warm-started run (``model.warm_start_dir``) begins with a trained Tacotron 2 as its
text-to-spectrogram part, checked to be of the config's sizes and features, and may hold it
still for ``model.tacotron2_frozen_steps`` steps (its parameters through the optimiser, its
batch statistics in the step) while the bridge-net and the WaveNet learn on its states.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import audio as audio_lib
from tts_jax import exported, workdir
from tts_jax.config import base_config
from tts_jax.data.inputs import text_mel_data
from tts_jax.errors import UserError
from tts_jax.family import count_params
from tts_jax.models import tacotron2 as T2
from tts_jax.models import wavenet as W
from tts_jax.models.text_to_wave.model import (
    TextToWave,
    TextToWaveConfig,
    build_model,
    losses,
    part_config,
    window_starts,
)
from tts_jax.nn.zoneout import add_forget_bias
from tts_jax.paths import run_path
from tts_jax.plotting import alignment_image, mel_image
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step
from tts_jax.workdir import config_diff

SUMMARY_SECONDS = 2.0  # audio sampled for TensorBoard at each evaluation


def _reduction(config) -> int:
    return T2.Tacotron2Config.from_config(config.model.tacotron2).reduction


def make_data(config, process_index, process_count):
    cfg = T2.Tacotron2Config.from_config(config.model.tacotron2)
    bridge_head = TextToWaveConfig.from_config(config.model).linear_weight > 0
    return text_mel_data(
        config,
        process_index,
        process_count,
        frames_multiple=cfg.reduction,
        linear=cfg.linear_head or bridge_head,
        audio=True,
    )


def example_batch(config, batch_size: int = 1) -> dict:
    """Dummy inputs of the shapes ``init_state`` traces (no data read)."""
    batch = T2.train.example_batch(part_config(config, "tacotron2"), batch_size)
    frames = batch["mels"].shape[1]
    batch["audio"] = np.zeros((batch_size, frames * config.data.hop_length), np.float32)
    return batch


def apply_model(model, variables, batch, starts, *, train, rng=None, mutable=False):
    """The training pass; ``rng`` None: evaluation (only the prenet's dropout, always on,
    draws, from a fixed key)."""
    rngs = T2.train.pass_rngs(rng, model.tacotron2.cfg.prenet_dropout)
    return model.apply(
        variables,
        batch["ids"],
        batch["id_lengths"],
        batch["mels"],
        batch["mel_lengths"],
        batch["audio"],
        starts,
        train=train,
        rngs=rngs,
        mutable=mutable,
    )


def init_state(config, rng, batch):
    m = TextToWaveConfig.from_config(config.model)
    model = build_model(config)
    p, d, z = jax.random.split(rng, 3)
    variables = model.init(
        {"params": p, "dropout": d, "zoneout": z},
        batch["ids"],
        batch["id_lengths"],
        batch["mels"],
        batch["mel_lengths"],
        batch["audio"],
        jnp.zeros(batch["ids"].shape[:1], jnp.int32),
        train=False,
    )
    params, stats = variables["params"], variables["batch_stats"]
    forget_bias = model.tacotron2.cfg.lstm_forget_bias
    if forget_bias:
        params = dict(params, tacotron2=add_forget_bias(params["tacotron2"], forget_bias))
    if m.warm_start_dir:
        own = {"params": params["tacotron2"], "batch_stats": stats["tacotron2"]}
        loaded = warm_start_variables(config, own)
        params = dict(params, tacotron2=loaded["params"])
        stats = dict(stats, tacotron2=loaded["batch_stats"])
    tx, _ = optimizer(config)
    return TrainState.create(params, tx, rng, model_state={"batch_stats": stats})


def tacotron2_leaves(params) -> dict:
    """The bool tree marking the Tacotron 2 part's parameters (the frozen ones)."""
    return {k: jax.tree.map(lambda _, k=k: k == "tacotron2", v) for k, v in params.items()}


def optimizer(config):
    """``(tx, schedule)``: Tacotron 2's recipe over all three parts, Tacotron 2 held for
    ``model.tacotron2_frozen_steps`` (tts_jax.train.optim.make_optimizer)."""
    frozen = TextToWaveConfig.from_config(config.model).tacotron2_frozen_steps
    return make_optimizer(config.optim, frozen=tacotron2_leaves, frozen_steps=frozen)


# --------------------------------------------------------------------------------------------
# Warm start
# --------------------------------------------------------------------------------------------

# What the text and the spectrogram must share with the warm-start model for its weights to
# mean what they meant in its training (its voice's features and its symbols).
SHARED_DATA = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax")
SHARED_DATA += ("framing",)
SHARED_TEXT = ("frontend", "cleaners", "voice")


def read_tacotron2(path) -> tuple:
    """``(config, {"params", "batch_stats"})`` of a trained Tacotron 2: an exported model
    (tts_jax/exported.py, float32 of its stored values) or a tacotron2 training workdir's
    newest checkpoint, read without building a train state (this runs while the
    text-to-wave's own init is being traced)."""
    if not run_path(path).is_dir():
        raise UserError(
            f"model.warm_start_dir {path} does not exist: give a trained Tacotron 2 (an "
            "exported model such as data/tacotron2_espeak, or a tacotron2 training workdir)"
        )
    config = workdir.read_config(path, "tacotron2")
    if exported.is_exported(path):
        _, variables, _ = workdir.load_variables(path, "tacotron2")
        return config, variables
    raw = workdir.restore_raw(path)
    return config, {"params": raw["params"], **raw["model_state"]}


def _features(config) -> dict:
    defaults = base_config().data
    data = {k: config.data.get(k, defaults[k]) for k in SHARED_DATA}
    text = {f"text.{k}": config.data.text.get(k, defaults.text[k]) for k in SHARED_TEXT}
    return {**data, **text}


def tacotron2_settings(config) -> T2.Tacotron2Config:
    """A Tacotron 2 config's model settings, or a text-to-wave config's Tacotron 2 part's."""
    model = config.model
    return T2.Tacotron2Config.from_config(model.tacotron2 if "tacotron2" in model else model)


def check_warm_start(config, source, variables, own) -> None:
    """Refuses a warm start whose Tacotron 2 does not fit ``config``: other array names or
    shapes than the config's Tacotron 2 part (``own``: its ``{"params", "batch_stats"}``,
    arrays or shapes), named with the model fields that differ; other text or spectrogram
    features (``data.*``, checked first: a front end of other symbols changes the embedding),
    named with both values."""
    path = TextToWaveConfig.from_config(config.model).warm_start_dir
    theirs, ours = _features(source), _features(config)
    differ = [
        f"data.{k} {theirs[k]!r} there, {ours[k]!r} here" for k in ours if theirs[k] != ours[k]
    ]
    if differ:
        raise UserError(
            f"model.warm_start_dir {path} was trained on other features: {'; '.join(differ)}"
        )
    if not exported.same_shapes(variables, own):
        theirs, ours = (
            {
                "/".join(str(getattr(k, "key", k)) for k in path): tuple(np.shape(x))
                for path, x in jax.tree_util.tree_leaves_with_path(t)
            }
            for t in (variables, own)
        )
        arrays = [
            f"{k} {theirs.get(k, 'missing')} there, {ours.get(k, 'missing')} here"
            for k in sorted(set(theirs) | set(ours))
            if theirs.get(k) != ours.get(k)
        ]
        # Read through Tacotron2Config: a saved config lacking newer fields means their defaults.
        fields = sorted(
            config_diff(*(dataclasses.asdict(tacotron2_settings(c)) for c in (source, config)))
        )
        raise UserError(
            f"model.warm_start_dir {path} holds a Tacotron 2 of other sizes than "
            f"config.model.tacotron2: {'; '.join(arrays[:4])}{' ...' if len(arrays) > 4 else ''}"
            f" (model fields that differ: {', '.join(f'model.tacotron2.{f}' for f in fields)});"
            " give config.model.tacotron2 the warm-start model's sizes"
        )


def warm_start_variables(config, own) -> dict:
    """The warm-start Tacotron 2's ``{"params", "batch_stats"}``, checked against the
    config's own (:func:`check_warm_start`), in the dtypes of ``own``."""
    path = TextToWaveConfig.from_config(config.model).warm_start_dir
    source, variables = read_tacotron2(path)
    check_warm_start(config, source, variables, own)
    return jax.tree.map(lambda x, o: jnp.asarray(x, o.dtype), variables, own)


def hold_tacotron2(old, new, frozen):
    """Batch statistics: ``new``, but Tacotron 2's ``old`` ones while ``frozen`` (a bool
    array)."""
    kept = jax.tree.map(lambda a, b: jnp.where(frozen, a, b), old["tacotron2"], new["tacotron2"])
    return dict(new, tacotron2=kept)


def _focus(out, batch, reduction: int):
    return T2.alignment_focus(
        out["alignments"], batch["id_lengths"], batch["mel_lengths"], reduction, batch["valid"]
    )


def train_step(config):
    model = build_model(config)
    m = TextToWaveConfig.from_config(config.model)
    r, window = _reduction(config), m.window_steps
    _, schedule = optimizer(config)

    def loss_fn(params, model_state, batch, rng):
        window_rng, rng = jax.random.split(rng)
        starts = window_starts(window_rng, batch["mel_lengths"], r, window)
        out, updates = apply_model(
            model,
            {"params": params, **model_state},
            batch,
            starts,
            train=True,
            rng=rng,
            mutable=["batch_stats"],
        )
        loss, terms = losses(out, batch, params, config, batch["step"])
        terms["focus"] = _focus(out, batch, r)
        frozen = batch["step"] < m.tacotron2_frozen_steps
        stats = hold_tacotron2(model_state["batch_stats"], updates["batch_stats"], frozen)
        return loss, (terms, {"batch_stats": stats})

    step_fn = make_train_step(loss_fn, schedule, config.train.compute_dtype)

    def train_step(state, batch):  # the loss sees the step (guided-attention decay)
        return step_fn(state, dict(batch, step=state.step))

    return train_step


def eval_step(config):
    """Held-out losses with the windows drawn from a fixed key: every evaluation scores the
    same samples of the same utterances."""
    model = build_model(config)
    r, window = _reduction(config), TextToWaveConfig.from_config(config.model).window_steps

    def step(state, batch):
        starts = window_starts(jax.random.PRNGKey(0), batch["mel_lengths"], r, window)
        variables = {"params": state.params, **state.model_state}
        out = apply_model(model, variables, batch, starts, train=False)
        loss, terms = losses(out, batch, state.params, config, state.step)
        terms["loss"] = loss
        terms["focus"] = _focus(out, batch, r)
        terms["weight"] = jnp.sum(batch["valid"].astype(jnp.float32))
        return terms

    return step


def eval_summaries(config, state, batch):
    """Alignments and mels (teacher forced and free running) of the first validation
    utterance, and up to ``SUMMARY_SECONDS`` of its text synthesised end to end: free-running
    Tacotron 2, bridge-net, cached WaveNet sampling."""
    model = build_model(config)
    variables = {"params": state.params, **state.model_state}
    one = {k: v[:1] for k, v in jax.device_get(batch).items()}
    r, hop = model.tacotron2.cfg.reduction, config.data.hop_length
    starts = jnp.zeros((1,), jnp.int32)
    tf = jax.device_get(apply_model(model, variables, one, starts, train=False))
    n, t = int(one["id_lengths"][0]), int(one["mel_lengths"][0])
    steps = -(-t // r)
    free = jax.device_get(
        jax.jit(
            lambda v, ids, lengths: model.apply(
                v,
                ids,
                lengths,
                method=TextToWave.synthesis_frames,
                max_decoder_steps=int(steps * 1.5) + 2,
                rngs={"dropout": jax.random.PRNGKey(0)},
            )
        )(variables, one["ids"], one["id_lengths"])
    )
    length = int(free["lengths"][0])
    frames = min(length, int(SUMMARY_SECONDS * config.data.sample_rate) // hop)
    floor = W.WaveNetConfig.from_config(config.model.wavenet).log_scale_min

    @jax.jit
    def sample(v, h, lengths, rng):
        cond = model.apply(v, h, lengths, method=TextToWave.conditioning)
        return W.generate(model.wavenet, v["params"]["wavenet"], cond, rng, log_scale_min=floor)

    wav = sample(variables, free["frames"][:, :frames], np.array([frames]), jax.random.PRNGKey(0))
    free_steps = -(-length // r)
    return {
        "images": {
            "alignment_teacher_forced": alignment_image(tf["alignments"][0, :steps, :n]),
            "alignment_free_running": alignment_image(free["alignments"][0, :free_steps, :n]),
            "mel": mel_image(
                {
                    "target": one["mels"][0, :t],
                    "predicted (teacher forced)": tf["mel_after"][0, :t],
                    "synthesized (free running)": free["mel_after"][0, :length],
                }
            ),
        },
        "audio": {
            "wavenet_free_running": np.asarray(jax.device_get(wav)[0]),
            "griffin_lim_free_running": audio_lib.mel_to_audio(
                free["mel_after"][0, :length],
                audio_lib.MelConfig.from_config(config.data),
                n_iter=30,
            ),
        },
    }


def param_count(config) -> dict[str, int]:
    """All three parts: Tacotron 2, the bridge-net (with its spectrogram head) and the
    WaveNet, trained together."""
    batch = {k: jnp.asarray(v) for k, v in example_batch(config).items()}
    rngs = {k: jax.random.key(0) for k in ("params", "dropout", "zoneout")}
    starts = jnp.zeros((1,), jnp.int32)
    keys = ("ids", "id_lengths", "mels", "mel_lengths", "audio")
    init = lambda: build_model(config).init(rngs, *(batch[k] for k in keys), starts, train=False)  # noqa: E731
    return {"model": count_params(init)}
