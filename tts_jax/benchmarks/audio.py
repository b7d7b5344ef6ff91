"""Front-end benchmarks: the JAX log-mel (used in losses) and the Griffin-Lim vocoder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import audio
from tts_jax.benchmarks import register, timed


@register("griffin_lim")
def griffin_lim(config_spec=None, quick=False):
    """x-real-time of 60-iteration Griffin-Lim on a 10 s mel (862 frames), batch 1."""
    cfg = audio.MelConfig()
    frames = 86 if quick else 862
    n_iter = 5 if quick else 60
    mel = jnp.asarray(np.random.default_rng(0).normal(-4, 1, (1, frames, cfg.n_mels)), jnp.float32)
    fn = jax.jit(lambda m: audio.mel_to_audio(m, cfg, n_iter=n_iter))
    t = timed(fn, mel, repeats=1 if quick else 3)
    seconds = frames * cfg.hop_length / cfg.sample_rate
    yield {
        "measure": "inference",
        "batch": 1,
        "frames": frames,
        "iterations": n_iter,
        "x_real_time": seconds / t["median_s"],
        "params": 0,
        **t,
    }


@register("log_mel")
def log_mel(config_spec=None, quick=False):
    """JAX log-mel forward + backward on a vocoder batch (16 x 8,192 samples)."""
    cfg = audio.MelConfig()
    b, n = (2, 8192) if quick else (16, 8192)
    x = jnp.asarray(np.random.default_rng(0).normal(0, 0.1, (b, n)), jnp.float32)
    fwd = jax.jit(lambda y: audio.log_mel(y, cfg))
    bwd = jax.jit(jax.grad(lambda y: jnp.sum(audio.log_mel(y, cfg))))
    for name, fn in (("forward", fwd), ("forward_backward", bwd)):
        t = timed(fn, x, repeats=1 if quick else 10)
        yield {
            "measure": name,
            "batch": b,
            "samples": n,
            "params": 0,
            "x_real_time": b * n / cfg.sample_rate / t["median_s"],
            **t,
        }
