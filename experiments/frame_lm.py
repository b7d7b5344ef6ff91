"""Causal conv mel predictor: the trainer's smoke-test family (tts_jax/models/frame_lm.py).

Variants: ``cpu`` (default; a couple of minutes on 2 cores) and ``tiny`` (tests).
"""

from tts_jax.config import base_config, check_variant, schedule, tiny_schedule
from tts_jax.models.frame_lm import FrameLMConfig

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "cpu": "the trainer's smoke-test model (causal conv mel predictor); minutes on 2 CPU cores",
    "tiny": "tests",
}


def get_config(variant: str = "cpu"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    c.model = FrameLMConfig.section("frame_lm")  # its defaults are the cpu variant's
    c.optim.learning_rate = 2e-3
    c.optim.grad_clip_norm = 1.0
    schedule(c, batch_size=16, num_steps=300, checkpoint_every=100)
    if variant == "tiny":
        c.model.channels = 16
        c.model.num_layers = 1
        tiny_schedule(c, batch_size=4, num_steps=12, checkpoint_every=4, eval_every=6)
        c.data.num_buckets = 3
    return c
