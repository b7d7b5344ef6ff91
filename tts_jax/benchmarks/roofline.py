"""The machine's dense float32 matrix-multiply rate: the practical ceiling for every model
benchmark (convolutions are at best as fast as a large GEMM). Measured through XLA (what the
models run on) and through numpy's BLAS (what a hand-tuned library reaches here)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.benchmarks import register, timed


@register("gemm")
def gemm(config_spec=None, quick=False):
    """GFLOP/s of an n x n x n float32 matmul (2 n^3 FLOPs), best of several calls."""
    rng = np.random.default_rng(0)
    for n in (256,) if quick else (1024, 2048, 4096):
        a = rng.normal(size=(n, n)).astype(np.float32)
        b = rng.normal(size=(n, n)).astype(np.float32)
        repeats = 1 if quick else 5
        res = timed(jax.jit(jnp.matmul), jnp.asarray(a), jnp.asarray(b), repeats=repeats)
        best = timed(np.matmul, a, b, repeats=repeats)["min_s"]  # the first call warms BLAS
        flops = 2.0 * n**3
        yield {
            "measure": "matmul",
            "config": f"n={n} float32",
            "batch": 1,
            "params": 0,
            "gflops_xla": flops / res["min_s"] / 1e9,
            "gflops_numpy_blas": flops / best / 1e9,
            **res,
        }
