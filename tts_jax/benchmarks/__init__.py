"""Benchmarks, and the harness behind ``tts-jax bench MODEL [MODEL ...]``.

Each module of this package registers its benchmarks (one per model family, plus the audio
front end and the dense-matmul roofline).

A benchmark is a generator registered with :func:`register`; it yields measurement dicts
(made with :func:`timed`) and the harness stamps each with the device, JAX version, host
allocator policy (:mod:`tts_jax.host_memory`), peak host memory and time, prints it and appends
it as one JSON line to the results file. Times are taken after compilation (the first call,
reported separately as ``compile_s``), over several repeats, each ending in
``block_until_ready``; ``median_s`` and ``min_s`` are reported.
``--quick`` runs one repeat on small inputs (smoke tests) and still reports parameter counts.
The same code runs on CPU and on GPU: ``jax.devices()`` decides.
"""

from __future__ import annotations

import datetime
import importlib
import json
import pkgutil
import platform
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import numpy as np

from tts_jax import host_memory
from tts_jax.errors import UserError

BENCHMARKS: dict[str, Callable[..., Iterator[dict]]] = {}


def register(name: str):
    def wrap(fn):
        BENCHMARKS[name] = fn
        return fn

    return wrap


def count_params(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def timed(fn: Callable, *args, repeats: int = 5) -> dict:
    """Compile time (first call) and median / min wall time of later calls of ``fn(*args)``."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return {
        "compile_s": compile_s,
        "median_s": float(np.median(times)),
        "min_s": float(np.min(times)),
        "repeats": len(times),
    }


def timed_side_by_side(fns: dict[str, Callable], *args, repeats: int = 3) -> dict[str, dict]:
    """:func:`timed` for several variants of one computation, each called as ``fn(*args)``,
    measured in one run: each is compiled first, then the variants are called in turn,
    ``repeats`` rounds, so that a machine slowing down or speeding up touches all of them
    alike. Each result also holds ``vs_first``: the first variant's median over this one's
    (above 1: this one is slower)."""
    compile_s = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        compile_s[name] = time.perf_counter() - t0
    times = {name: [] for name in fns}
    for _ in range(max(1, repeats)):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t0)
    first = float(np.median(next(iter(times.values()))))
    return {
        name: {
            "compile_s": compile_s[name],
            "median_s": float(np.median(t)),
            "min_s": float(np.min(t)),
            "repeats": len(t),
            "vs_first": float(np.median(t)) / first,
        }
        for name, t in times.items()
    }


def _stamp(m: dict) -> dict:
    dev = jax.devices()[0]
    return {
        **m,
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
        "host_malloc": host_memory.policy(),
        "host": platform.node(),
        "peak_host_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def run(model: str, *, config_spec: str | None, quick: bool, out: str | Path) -> list[dict]:
    _register_builtin()
    if model not in BENCHMARKS:
        raise UserError(f"no benchmark {model!r}; available: {sorted(BENCHMARKS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for m in BENCHMARKS[model](config_spec=config_spec, quick=quick):
        m = _stamp({"benchmark": model, "quick": quick, **m})
        print(json.dumps(m), flush=True)
        with open(out, "a") as f:
            f.write(json.dumps(m) + "\n")
        results.append(m)
    return results


def _register_builtin() -> None:
    """Import the modules of this package, whose benchmarks register themselves."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
