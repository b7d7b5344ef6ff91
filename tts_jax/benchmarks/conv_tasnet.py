"""Conv-TasNet speed: separation x-real-time (batch 1, 10 s at 8 kHz) and one training step
(the config's batch of 4 s segments), at the given config (default paper size)."""

from __future__ import annotations

import jax
import numpy as np

from tts_jax.benchmarks import count_params, register, timed
from tts_jax.config import load_config
from tts_jax.models import conv_tasnet as CT


@register("conv_tasnet")
def conv_tasnet(config_spec=None, quick=False):
    spec = config_spec or (
        "experiments/conv_tasnet.py:tiny" if quick else "experiments/conv_tasnet.py:paper"
    )
    config = load_config(spec)
    sr = 8000
    seconds = 1.0 if quick else 10.0
    model = CT.build_model(config)
    rng = np.random.default_rng(0)
    mix = rng.normal(0, 0.1, (1, int(seconds * sr))).astype(np.float32)
    params = model.init(jax.random.PRNGKey(0), mix[:, :800])["params"]
    res = timed(jax.jit(model.apply), {"params": params}, mix, repeats=1 if quick else 3)
    yield {
        "measure": "inference",
        "config": spec,
        "batch": 1,
        "seconds": seconds,
        "params": count_params(params),
        "x_real_time": seconds / res["median_s"],
        **res,
    }
    b, seg = config.train.batch_size, int(config.train.segment_seconds * sr)
    batch = {
        "mixture": rng.normal(0, 0.1, (b, seg)).astype(np.float32),
        "sources": rng.normal(0, 0.1, (b, 2, seg)).astype(np.float32),
    }
    state = CT.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
    res = timed(jax.jit(CT.FAMILY.train_step(config)), state, batch, repeats=1 if quick else 3)
    yield {
        "measure": "train_step",
        "config": spec,
        "batch": b,
        "params": count_params(state.params),
        "steps_per_s": 1 / res["median_s"],
        **res,
    }
