"""Whether the layers being traced will be ``vmap``-ped over a run axis with parameters per
run (a stack of runs, :mod:`tts_jax.train.stacked`).

Some layers have a form that is fast alone and one that is fast stacked: a convolution whose
kernel differs per run becomes, under ``vmap``, a grouped convolution that XLA's CPU backend
runs several times slower than the runs one by one, while its matmul form batches well
(:func:`tts_jax.models.wavenet.model.causal_conv`). The stacked form supports reverse-mode
differentiation only (training), so it is not the default: a stacked trainer traces its step
inside :func:`stacked_layers`, and the layers read :func:`per_run_kernels` while they are
traced. A trace-time switch like flax's ``deterministic``; nothing is kept between traces.
"""

from __future__ import annotations

import contextvars
import functools

_STACKED = contextvars.ContextVar("tts_jax_per_run_kernels", default=False)


def per_run_kernels() -> bool:
    """True while a function wrapped by :func:`stacked_layers` is being traced."""
    return _STACKED.get()


def stacked_layers(fn):
    """``fn`` (a step to be vmapped over runs, or already vmapped) with the layers it traces
    in their stacked form."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        token = _STACKED.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _STACKED.reset(token)

    return traced
