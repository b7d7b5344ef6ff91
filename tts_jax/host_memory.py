"""The host allocator's policy for XLA's CPU backend: freed memory kept for the next step.

On a CPU, one call of a compiled step takes all its intermediate arrays from a single scratch
buffer, sized by XLA's buffer assignment: 823 MB for the paper-size ClariNet distillation step
(batch 1 x 4,096 samples), which keeps every flow's activations for the backward pass. XLA
asks glibc's ``malloc`` for it on every call and frees it at the end. glibc serves a request
that large with a fresh ``mmap`` and returns it with ``munmap``, so every step touches 200,000
new pages, and the kernel zeroes each one on its first write. Measured on this repository's
machine (2 cores, ``tools/vs_reference.py``'s): 0.42-0.9 s of system time per 2.0 s step,
worse when the hypervisor has taken the freed memory back in between. PyTorch's steps are
made of many small allocations, which glibc already recycles.

:func:`retain_freed_memory` tells glibc to serve large requests from its heap and to keep what
is freed there: one arena for all threads (the other arenas fall back to ``mmap`` for any
request over their 64 MB heaps), no ``mmap`` for large blocks, and no trimming of the heap's
free top. The scratch buffer is then allocated once and reused; the step above
touches no new page in most calls and takes 1.88 s against 2.35 s (``tools/vs_reference.py``
runs this ablation beside every case). The costs: the process keeps its peak heap for its
lifetime; the heap grows by another scratch buffer now and then while small allocations
settle in the freed one (2-3 times in the first 300 calls of tests/test_host_memory.py's
step, then no more); and threads share one arena's lock (XLA allocates a few buffers per
call, not per op).

It must run before any thread allocates, that is before numpy, TensorFlow or JAX start their
thread pools, or threads already bound to another arena keep using it. So it is called by the
process's entry point (``tts-jax``: :mod:`tts_jax.__main__`, and the workers of
``tools/vs_reference.py``), never on import of a library module. Elsewhere (another libc,
macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import os

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# No trimming at all: mallopt takes an int, and glibc converts it to a size_t threshold, so -1
# is SIZE_MAX. (2**31 - 1, the largest positive int, is too small: a HiFi-GAN V1 training
# step's scratch buffer is over 2 GB, and its heap was trimmed and refaulted every few calls.)
_NEVER = -1

ENV_DEFAULT = "TTS_JAX_SYSTEM_MALLOC"  # set to 1: leave glibc's defaults (the ablation)
_in_effect = False


def policy() -> str:
    """``"retained"`` once :func:`retain_freed_memory` took effect in this process, else
    ``"system"`` (benchmark rows record it)."""
    return "retained" if _in_effect else "system"


def retain_freed_memory() -> bool:
    """Applies the policy above to this process; True where it took effect (glibc, and
    ``$TTS_JAX_SYSTEM_MALLOC`` unset)."""
    if os.environ.get(ENV_DEFAULT) == "1":
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt ignores these
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER))
    global _in_effect
    _in_effect = all(mallopt(param, value) == 1 for param, value in settings)
    return _in_effect
