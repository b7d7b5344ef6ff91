"""Training-step benchmark of the smoke-test family (also a template for model families)."""

from __future__ import annotations

import jax
import numpy as np

from tts_jax.benchmarks import count_params, register, timed
from tts_jax.config import load_config
from tts_jax.models import frame_lm as family


@register("frame_lm")
def frame_lm(config_spec=None, quick=False):
    spec = config_spec or ("experiments/frame_lm.py:tiny" if quick else "experiments/frame_lm.py")
    config = load_config(spec)
    b, t = config.train.batch_size, 64 if quick else 400
    rng = np.random.default_rng(0)
    batch = {
        "mels": rng.normal(-4, 2, (b, t, config.data.n_mels)).astype(np.float32),
        "mel_mask": np.ones((b, t), np.float32),
    }
    state = family.init_state(config, jax.random.PRNGKey(0), batch)
    step = jax.jit(family.train_step(config))
    res = timed(step, state, batch, repeats=1 if quick else 10)
    yield {
        "measure": "train_step",
        "config": spec,
        "batch": b,
        "frames": t,
        "params": count_params(state.params),
        "steps_per_s": 1 / res["median_s"],
        **res,
    }
