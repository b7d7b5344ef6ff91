"""Gaussian WaveNet teacher configs (tts_jax/models/wavenet/). ``paper``: ClariNet's teacher
(20 layers in 2 stacks of dilations 1..512, filter 2, 128 channels, Adam 1e-3 halved every
200k steps, batch 8 of 0.5 s). ``cpu``: narrower and shallower, for 2 CPU cores. ``tiny``: tests.

    tts-jax train --config experiments/wavenet.py:cpu --workdir runs/wavenet_cpu
"""

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.wavenet import WaveNetConfig

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "ClariNet's Gaussian WaveNet teacher: 20 layers in 2 stacks, 128 channels",
    "cpu": "a narrower, shallower teacher for 2 CPU cores (the ClariNet sweep's)",
    "tiny": "tests",
}


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    c.model = WaveNetConfig.section("wavenet")  # its defaults are ClariNet's teacher
    m = c.model

    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.schedule = "exponential"
    c.optim.decay_steps = 200_000
    c.optim.decay_rate = 0.5
    c.optim.staircase = True
    c.optim.grad_clip_norm = 1.0

    c.train.segment_length = 11008  # 43 frames, ~0.5 s
    c.train.eval_segment_length = 22016
    schedule(c, batch_size=8, num_steps=1_000_000, checkpoint_every=5000, log_every=100)

    if variant == "paper":
        pass
    elif variant in ("cpu", "tiny"):
        m.layers = 12
        m.residual_channels = m.gate_channels = m.skip_channels = 32
        c.train.segment_length = 4096
        c.train.eval_segment_length = 8192
        # 1,000 steps is about 30 min on 2 CPU cores: the teacher of the :cpu KL sweep.
        cpu_schedule(c, 1000, eval_batches=2)
        if variant == "tiny":
            m.layers = 4
            m.residual_channels = m.gate_channels = m.skip_channels = 8
            m.front_kernel = 4
            c.train.segment_length = 1024
            c.train.eval_segment_length = 1024
            tiny_schedule(c, batch_size=2)
    return c
