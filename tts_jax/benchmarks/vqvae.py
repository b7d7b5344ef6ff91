"""VQ-VAE speed: one training step on a batch of 400-frame log-mels, VQ-VAE and VQ-VAE-2."""

from __future__ import annotations

import jax
import numpy as np

from tts_jax.benchmarks import count_params, register, timed
from tts_jax.config import load_config
from tts_jax.models import vqvae as V


@register("vqvae")
def vqvae(config_spec=None, quick=False):
    spec = config_spec or ("experiments/vqvae.py:tiny" if quick else "experiments/vqvae.py:paper")
    frames = 32 if quick else 400
    for levels in (1, 2):
        config = load_config(spec, [f"--config.model.levels={levels}"])
        b = config.train.batch_size
        mels = np.random.default_rng(0).normal(-5, 2, (b, frames, 80)).astype(np.float32)
        batch = {"mels": mels, "mel_mask": np.ones((b, frames), np.float32)}
        state = V.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
        res = timed(jax.jit(V.FAMILY.train_step(config)), state, batch, repeats=1 if quick else 3)
        yield {
            "measure": "train_step",
            "config": f"{spec} levels={levels}",
            "batch": b,
            "frames": frames,
            "params": count_params(state.params),
            "steps_per_s": 1 / res["median_s"],
            **res,
        }
