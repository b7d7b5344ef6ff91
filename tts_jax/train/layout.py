"""Where the runs of a stack go: split over the devices, sharing them, or one after another.

:func:`choose_layout` is the rule, a pure function of the run count, the devices, the batch,
the backend and the runs' length in steps; :func:`layout_mesh` builds the ``(run, data)``
mesh of a stacked layout. The rule, and the measurements it rests on (``tools/bench_sweep.py``,
docs/performance_sweeps.md):

1. **Split the run axis** over ``r`` device groups, ``r`` the largest divisor of the run count
   that is at most the device count (5 runs on 8 devices: 5 groups of one device, three idle;
   10 runs on 8: 5 groups of 2 runs). Each group splits its batch over the largest ``data``
   size that divides it and fits the devices left to it.
2. **One run per group: stack.** No run shares a device with another, so a run's kernels never
   meet another run's in one convolution; the stack compiles once instead of R times and
   needs no collective between runs.
3. **Runs share a device: on accelerators, stack** (not yet measured there: small runs leave
   most of such a chip idle). **On XLA's CPU backend, stack only short runs.** There a stacked
   step of runs that share a device ran at 0.5-0.8x the run-steps per second of the runs one
   by one, even with per-run-kernel convolutions as batched matmuls
   (:func:`tts_jax.models.wavenet.model.causal_conv`): the R-times-larger activations lose to
   memory traffic what the batched kernels gain. What the stack saves is R - 1 compilations
   (and initialisations), seconds each; that outweighs the slower steps only while a run is
   short: at most :data:`CPU_SHARED_MAX_STEPS` steps. Longer runs train one after another.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh

# Runs longer than this that would share a CPU device train one after another (measured:
# docs/performance_sweeps.md).
CPU_SHARED_MAX_STEPS = 50


@dataclasses.dataclass(frozen=True)
class Layout:
    """``mode``: ``"stack"`` (one program, the run axis over ``run_shards`` device groups of
    ``data_shards`` devices each) or ``"sequential"`` (one run after another, each
    data-parallel over every device); ``why``: the rule's reason, for reports."""

    mode: str
    runs: int
    devices: int
    batch_size: int
    run_shards: int
    data_shards: int
    why: str

    def describe(self) -> str:
        if self.mode == "sequential":
            return f"{self.runs} runs one after another on {self.devices} device(s): {self.why}"
        used = self.run_shards * self.data_shards
        return (
            f"{self.runs} runs in 1 program on {used} device(s) (mesh run={self.run_shards} x "
            f"data={self.data_shards}): {self.why}"
        )


def _split(runs: int, devices: int, batch_size: int) -> tuple[int, int]:
    """(run shards, data shards): the largest divisor of ``runs`` at most ``devices``, then the
    largest data split of the batch that fits the devices left to each group."""
    run = max(r for r in range(1, min(runs, devices) + 1) if runs % r == 0)
    data = devices // run
    while batch_size % data:
        data -= 1
    return run, data


def choose_layout(
    runs: int, devices: int, batch_size: int, *, backend: str, num_steps: int
) -> Layout:
    """The layout of ``runs`` runs of one stack group, ``num_steps`` steps each, on ``devices``
    devices (the module docstring gives the rule)."""
    if runs < 1 or devices < 1 or batch_size < 1:
        raise ValueError(f"runs {runs}, devices {devices}, batch {batch_size}: each must be >= 1")
    run, data = _split(runs, devices, batch_size)
    per_group = runs // run

    def layout(mode, why):
        return Layout(mode, runs, devices, batch_size, run, data, why)

    if per_group == 1:
        return layout("stack", "one run per device group")
    if backend != "cpu":
        return layout("stack", f"{per_group} runs share each device group ({backend})")
    if num_steps <= CPU_SHARED_MAX_STEPS:
        return layout("stack", f"{per_group} short runs share each device group")
    return Layout(
        "sequential",
        runs,
        devices,
        batch_size,
        1,
        devices,
        f"{per_group} runs would share a CPU device, each too long to gain from stacking "
        f"({num_steps} > {CPU_SHARED_MAX_STEPS} steps)",
    )


def stack_anyway(layout: Layout) -> Layout:
    """``layout``'s run split as a stack, whatever the rule chose (for benchmarks)."""
    run, data = _split(layout.runs, layout.devices, layout.batch_size)
    return dataclasses.replace(layout, mode="stack", run_shards=run, data_shards=data)


def layout_mesh(layout: Layout, devices=None) -> Mesh:
    """The ``(run, data)`` mesh of a stacked ``layout`` over the first ``run_shards x
    data_shards`` of ``devices`` (default: every device)."""
    devices = list(jax.devices() if devices is None else devices)
    grid = np.asarray(devices[: layout.run_shards * layout.data_shards])
    return Mesh(grid.reshape(layout.run_shards, layout.data_shards), ("run", "data"))
