"""Speech recognizer configs (tts_jax/models/asr: Conformer-CTC on log-mels, characters out):
the judge of intelligibility that needs no reference recording.

``paper``: Conformer (S) of Gulati et al. 2020 (16 blocks of 144, 4x time reduction,
SpecAugment's LibriSpeech policy, Transformer warmup), for accelerators. ``cpu``: 6 blocks,
3x time reduction, narrower subsampling, milder SpecAugment and a short warmup, sized to
learn on 2 CPU cores in about two hours; train it on a wide-vocabulary corpus, so that it
hears words it never trained on::

    tts-jax corpus --out runs/corpus_words20k --num-utterances 8000 --words 20000
    tts-jax train --config experiments/asr.py:cpu --workdir runs/asr_cpu \
        --config.data.path=runs/corpus_words20k

Expected: the validation CER (``eval cer`` in the log) falls from 1.0 to under 0.2 within
the first hour and keeps falling; the run checkpoints every 250 steps and resumes when the
same command is run again. ``tiny``: tests.
"""

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.asr import ConformerCTCConfig

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "Conformer (S), Gulati et al. 2020: 16 blocks of 144, 4x reduction, accelerators",
    "cpu": "6 blocks of 144, 3x reduction: learns on 2 CPU cores in about two hours",
    "tiny": "tests",
}


def get_config(variant: str = "cpu"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    c.model = ConformerCTCConfig.section("asr")  # the paper's values
    m = c.model
    # Characters are judged on the cleaned text; punctuation the cleaners keep is dropped by
    # the recognizer's own normalisation, and anything outside the table is dropped here.
    c.data.text.unknown = "drop"

    # Conformer's recipe: Adam (0.9, 0.98, 1e-9), linear warmup (10k steps), then decay.
    c.optim.name = "adam"
    c.optim.b1, c.optim.b2, c.optim.eps = 0.9, 0.98, 1e-9
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 10_000
    c.optim.schedule = "exponential"
    c.optim.decay_steps = 100_000
    c.optim.decay_rate = 0.5
    c.optim.grad_clip_norm = 5.0
    schedule(c, batch_size=64, num_steps=200_000, checkpoint_every=2000, log_every=100)

    if variant in ("cpu", "tiny"):
        # 35 ms output frames: espeak at 160 words a minute gives 1.8 of them per character
        # (at least 1.35) on the wide-vocabulary corpus; 4x would leave 1.3 (at least 1.01).
        m.time_strides = (3, 1)
        m.subsampling_channels = 32
        m.num_blocks = 6
        m.conv_kernel = 15
        m.freq_masks, m.freq_mask_width = 2, 15
        m.time_masks, m.time_mask_width = 2, 20
        c.optim.learning_rate = 1.5e-3
        c.optim.warmup_steps = 300
        c.optim.decay_steps = 2500  # halved every 2500 steps after the warmup
        c.optim.final_learning_rate = 5e-5
        # eval_batches 0: the whole validation split (200 utterances, a minute)
        cpu_schedule(c, 10_000, batch_size=16, eval_batches=0)
        c.train.keep_checkpoints = 3
        c.data.max_frames = 1000
    if variant == "tiny":
        m.model_dim = 32
        m.num_heads = 2
        m.num_blocks = 1
        m.subsampling_channels = 8
        m.conv_kernel = 5
        m.dropout = 0.0
        c.optim.warmup_steps = 0
        c.optim.schedule = "constant"
        c.optim.learning_rate = 3e-3
        tiny_schedule(c, batch_size=4, num_steps=6, eval_every=3)
        c.data.num_buckets = 3
    return c
