"""Conv-TasNet configs (tts_jax/models/conv_tasnet/). ``paper``: Luo & Mesgarani's best
non-causal model (N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3; 5.05 M parameters),
4 s segments at 8 kHz, Adam 1e-3, gradient clipping at L2 norm 5. ``cpu``: narrower and
shallower for 2 CPU cores. ``tiny``: tests. Data: ``tts-jax mixtures`` of a multi-voice corpus.

    tts-jax corpus --out runs/corpus_voices --voice en-us,en-us+f2,en-us+m3,en-us+f4
    tts-jax mixtures --corpus runs/corpus_voices --out runs/mixtures
    tts-jax train --config experiments/conv_tasnet.py:cpu --workdir runs/conv_tasnet_cpu
    tts-jax separate --workdir runs/conv_tasnet_cpu --mix MIX.wav --out-dir sep/
"""

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.conv_tasnet import ConvTasNetConfig

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "Luo & Mesgarani's best non-causal Conv-TasNet, 4 s segments at 8 kHz",
    "cpu": "narrower and shallower, for 2 CPU cores",
    "tiny": "tests",
}


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    c.model = m = ConvTasNetConfig.section("conv_tasnet")  # the paper's N, L, B, H, Sc, P, X, R

    c.data.mixtures = "runs/mixtures"
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.grad_clip_norm = 5.0
    c.train.segment_seconds = 4.0
    schedule(c, batch_size=4, num_steps=200_000, checkpoint_every=2000, log_every=100)

    if variant == "paper":
        pass
    elif variant in ("cpu", "tiny"):
        m.num_filters = 128
        m.bottleneck = 64
        m.hidden = 128
        m.skip = 64
        m.blocks = 6
        m.repeats = 2
        c.train.segment_seconds = 2.0
        cpu_schedule(c, 20_000, batch_size=8, eval_batches=4)
        if variant == "tiny":
            m.num_filters = 16
            m.filter_length = 8
            m.bottleneck = 8
            m.hidden = 16
            m.skip = 8
            m.blocks = 3
            m.repeats = 1
            c.train.segment_seconds = 0.5
            tiny_schedule(c, batch_size=2)
    return c
