"""How much receptive field a mel-conditioned WaveNet needs: Tacotron 2's Table 4 (Shen et
al. 2018) with our Gaussian WaveNet (tts_jax/models/wavenet/).

The paper's rows: 30 layers in 3 dilation cycles (receptive field 6,139 samples, MOS 4.526),
24 in 4 (505, 4.547), 12 in 2 (253, 4.481), and 30 without dilation (61, 3.930): filter 3,
dilations 1, 2, 4, ... restarting every cycle. :data:`VARIANTS` are those four settings of
``model.layers`` and ``model.stacks``; everything else (widths, data, seed, steps) is the one
config of a variant below. One run is

    tts-jax train --config experiments/wavenet_receptive_field.py:cpu --workdir W \\
        --config.model.layers=12 --config.model.stacks=2

and the whole ablation (train every variant, score held-out utterances, write W/report.md,
W/results.csv and plots; run it again to resume) is

    tts-jax sweep experiments/wavenet_receptive_field.py:cpu --workdir runs/wavenet_rf

with ``--set teacher.a.b=VALUE`` to override a field of every run's config (the runner is
tts_jax/models/wavenet/ablation.py).

Variants: ``paper`` (ClariNet's teacher widths, 128 channels, and its schedule, batch 8 x 0.5 s:
for accelerators), ``cpu`` (32 channels, batch 1 x 8,192 samples, 2,000 steps: the four runs in
about 2-2.2 h on one CPU core, measured), ``tiny`` (tests).
"""

from tts_jax.config import check_variant, load_config, schedule
from tts_jax.models.wavenet.ablation import run_ablation

# The compared settings: name -> overrides of model.* (layers, and stacks = dilation cycles).
# The first is the paper's baseline, which the report's paired differences refer to.
VARIANTS = {
    "30x3": {"layers": 30, "stacks": 3},
    "24x4": {"layers": 24, "stacks": 4},
    "12x2": {"layers": 12, "stacks": 2},
    "30x30": {"layers": 30, "stacks": 30},  # no dilation: every dilation 1
}

# Tacotron 2, Table 4: name -> (receptive field in samples, MOS).
PAPER = {
    "30x3": (6139, 4.526),
    "24x4": (505, 4.547),
    "12x2": (253, 4.481),
    "30x30": (61, 3.930),
}

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "Tacotron 2's WaveNet ablation (filter 3, 30 layers / 3 cycles) at 128 channels",
    "cpu": "the same, 32 channels, batch 1 x 8,192 samples: the four runs on one CPU core",
    "tiny": "tests",
}

BUDGET_NOTE = {
    "cpu": (
        "**What this budget can and cannot show.** Four runs of 2,000 steps of one 0.37 s "
        "segment each (about 12 minutes of audio seen) at 32 channels, one seed, on the "
        "embedded espeak corpus: far from converged. It can show whether, at equal width, data "
        "and steps, the held-out likelihood of real speech and the distance of samples to the "
        "recordings order with the receptive field, in particular whether the undilated stack "
        "(61 samples, 2.8 ms) falls behind and whether 253-505 samples (11-23 ms) come close to "
        "6,139 (278 ms); the paired NLL differences say whether a gap is larger than the "
        "spread over utterances. It cannot show MOS (no listeners; MR-STFT and MCD of "
        "single samples are weak proxies for naturalness), what happens at convergence or at "
        "the paper's width, nor a seed-to-seed spread; the 30x3 network's 6,139-sample field "
        "nearly fills its 8,192-sample training segments, so it sees its whole context on a "
        "quarter of the positions; and espeak's voice is far more regular than a human's."
    ),
    "paper": (
        "**What this budget can and cannot show.** The paper's layer settings at 128 channels "
        "(the paper gives no width), one seed, on the configured corpus; MR-STFT and MCD of one "
        "sample per utterance stand in for the paper's listening test, which is not repeated."
    ),
    "tiny": "A toy run for the tests: it shows that the pipeline works, nothing about speech.",
}


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    c = load_config(f"experiments/wavenet.py:{variant}")  # the teacher's, by variant
    m = c.model
    m.layers, m.stacks = 30, 3  # the paper's baseline; VARIANTS change only these two
    m.kernel_size = 3  # Tacotron 2's WaveNet: filter 3
    m.front_kernel = 1  # a 1x1 input projection: the receptive field is the paper's

    if variant == "cpu":
        # On one core a step of batch x segment x layers beyond ~250k sample-layers costs
        # 2-3x more per sample (measured: 30 layers, batch 8 x 4,096: 10.8 s; batch 1 x 8,192:
        # 1.1 s), so one segment a step, long enough to hold the largest receptive field
        # (6,139). Measured on one core, s/step: 30x3 1.13, 24x4 0.71, 12x2 0.26, 30x30 1.10;
        # scoring ~2 min a variant: the four runs in about 2-2.2 h.
        c.train.segment_length = 8192
        c.train.eval_segment_length = 16384
        schedule(c, batch_size=1, num_steps=2000, checkpoint_every=200, eval_batches=16)
    return c


def get_sweep(variant: str = "cpu"):
    """What ``tts-jax sweep`` runs: every VARIANTS entry at ``variant``'s config, scored."""
    return {
        "runner": run_ablation,
        "config": f"experiments/wavenet_receptive_field.py:{variant}",
        "variants": VARIANTS,
        "paper": PAPER,
        "heldout": {"tiny": 2}.get(variant, 50),  # test utterances scored
        "nll_seconds": {"tiny": 0.5}.get(variant, 2.0),
        # Sampled: 64 frames at :cpu (a whole padding bucket of the vocoder), 124 at :paper.
        "sample_seconds": {"tiny": 0.12, "cpu": 0.75}.get(variant, 1.45),
        "budget_note": BUDGET_NOTE[variant],
    }
