"""Stacked against sequential sweeps: the runs of a study trained as one program
(:mod:`tts_jax.train.stacked`) or one after another, each data-parallel over every device (the
``--sequential`` sweep), measured side by side in one process per device count.

A case is a family, a size, R runs and D devices:

* ``clarinet``: R students of ``experiments/clarinet_kl.py:{size}``, the sweep's objectives in
  turn (``VARIANTS``) and seed k for run k, distilled from one randomly initialised teacher of
  ``experiments/wavenet.py:{size}``;
* ``wavenet``: R seeds of ``experiments/wavenet.py:{size}`` (one shape group of the
  receptive-field ablation, as its seeds are).

Both at batch 8 (so that 8 devices split it) on the same synthetic batches. ``sequential``
builds, compiles and steps each run in turn (a fresh step function per run, as a sweep of
separate runs does); ``stacked`` builds the stack's one state and step on the mesh its layout
(:func:`tts_jax.train.layout.choose_layout`) gives. Each reports wall time (state
initialisation, compilation and the steps), compile time, and run-steps per second over the
steps alone (each step fetches its metrics, as the trainers do), plus every run's losses, so
that the two modes can be checked to train the same runs to the same numbers.

Fake devices need a process of their own
(``XLA_FLAGS=--xla_force_host_platform_device_count=D``): :func:`measure` starts one worker
(``python -m tts_jax.benchmarks.sweep --worker SPEC``) per device count. Evaluation, held-out
sampling and checkpoint writing are not timed: they are the same per run in both modes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from tts_jax.benchmarks import register
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.family import get_family
from tts_jax.nn.run_axis import stacked_layers
from tts_jax.sweep import load_sweep
from tts_jax.train import layout as layout_lib
from tts_jax.train import mesh as mesh_lib
from tts_jax.train import stacked

REPO = Path(__file__).resolve().parents[2]
BATCH = 8

# name -> the cases measured: families, sizes, runs, device counts, steps per run.
PLANS = {
    "full": {
        "families": ("clarinet", "wavenet"),
        "sizes": ("tiny", "cpu"),
        "runs": (5, 10),
        "devices": (8, 1),
        "steps": {"tiny": 8, "cpu": 4},
    },
    "quick": {
        "families": ("clarinet",),
        "sizes": ("tiny",),
        "runs": (2,),
        "devices": (2,),
        "steps": {"tiny": 2},
    },
}


# ------------------------------------------------------------------------------ the runs


def sweep_configs(family: str, size: str, runs: int, teacher_dir: Path | None) -> list:
    """The R configs of a case (see the module docstring), at batch :data:`BATCH`."""
    configs = []
    if family == "clarinet":
        sweep_file = load_sweep(str(REPO / "experiments" / f"clarinet_kl.py:{size}"))
        variants = list(sweep_file["variants"].values())
    for k in range(runs):
        if family == "clarinet":
            config = load_config(str(REPO / "experiments" / f"clarinet_kl.py:{size}"))
            config.model.teacher_workdir = str(teacher_dir)
            for key, value in variants[k % len(variants)].items():
                config.model[key] = value
        elif family == "wavenet":
            config = load_config(str(REPO / "experiments" / f"wavenet.py:{size}"))
        else:
            raise UserError(f"no sweep benchmark for family {family!r}; use clarinet or wavenet")
        config.seed = k
        config.data.seed = 0
        config.train.batch_size = BATCH
        configs.append(config)
    return configs


def write_teacher(size: str, path: Path) -> Path:
    """A workdir holding a randomly initialised teacher of ``experiments/wavenet.py:{size}``."""
    from tts_jax import workdir  # noqa: PLC0415 - only the ClariNet cases need it

    config = load_config(str(REPO / "experiments" / f"wavenet.py:{size}"))
    family = get_family("wavenet")
    state = family.init_state(config, jax.random.PRNGKey(0), family.example_batch(config))
    workdir.write(path, config, state, 0)
    return path


def synthetic_batches(config, steps: int, seed: int = 0) -> list[dict]:
    """``steps`` batches ``{"audio": [B, T], "mels": [B, T / hop, n_mels]}`` of noise."""
    rng = np.random.default_rng(seed)
    seg, hop = config.train.segment_length, config.data.hop_length
    b, n_mels = config.train.batch_size, config.data.n_mels
    return [
        {
            "audio": (0.1 * rng.standard_normal((b, seg))).astype(np.float32),
            "mels": rng.uniform(-8.0, 0.0, (b, seg // hop, n_mels)).astype(np.float32),
        }
        for _ in range(steps)
    ]


# ------------------------------------------------------------------------------ the modes


def _steps(compiled, state, batches, place, extra=()):
    """Runs the steps, fetching the metrics after each; returns (state, losses, seconds)."""
    losses = []
    t0 = time.perf_counter()
    for batch in batches:
        state, metrics = compiled(state, place(batch), *extra)
        losses.append(np.asarray(jax.device_get(metrics["loss"])))
    return state, np.stack(losses), time.perf_counter() - t0


def run_sequential(family, configs, batches) -> dict:
    """Each run alone, data-parallel over every device: ``{"wall_s", "compile_s", "step_s",
    "losses": [R][steps]}``."""
    mesh = mesh_lib.make_mesh()
    rep, data = mesh_lib.replicated(mesh), mesh_lib.data_sharding(mesh)
    place = lambda b: mesh_lib.to_global(b, data)  # noqa: E731
    wall = compile_s = step_s = 0.0
    losses = []
    for config in configs:
        t0 = time.perf_counter()
        init = jax.jit(lambda r, b, c=config: family.init_state(c, r, b), out_shardings=rep)
        state = init(jax.random.PRNGKey(config.seed), place(batches[0]))
        step = jax.jit(
            family.train_step(config),
            in_shardings=(rep, data),
            out_shardings=(rep, rep),
            donate_argnums=0,
        )
        t1 = time.perf_counter()
        compiled = step.lower(state, place(batches[0])).compile()
        compile_s += time.perf_counter() - t1
        _, run_losses, seconds = _steps(compiled, state, batches, place)
        step_s += seconds
        wall += time.perf_counter() - t0
        losses.append(run_losses.tolist())
    return {"wall_s": wall, "compile_s": compile_s, "step_s": step_s, "losses": losses}


def run_stacked(family, configs, batches, layout) -> dict:
    """The runs as one program on ``layout``'s mesh: the same keys as :func:`run_sequential`."""
    t0 = time.perf_counter()
    stack = stacked._stack(family, configs)
    mesh = layout_lib.layout_mesh(layout)
    runs_s = NamedSharding(mesh, PartitionSpec("run"))
    data = NamedSharding(mesh, PartitionSpec("data"))
    place = lambda b: mesh_lib.to_global(b, data)  # noqa: E731
    rngs = jnp.stack([jax.random.PRNGKey(c.seed) for c in configs])
    state = jax.jit(stack.init, out_shardings=runs_s)(rngs, place(batches[0]))
    hparams = jax.device_put(stack.hparams(), runs_s)
    step = jax.jit(
        stacked_layers(stack.step()),
        in_shardings=(runs_s, data, runs_s),
        out_shardings=(runs_s, runs_s),
        donate_argnums=0,
    )
    t1 = time.perf_counter()
    compiled = step.lower(state, place(batches[0]), hparams).compile()
    compile_s = time.perf_counter() - t1
    _, losses, step_s = _steps(compiled, state, batches, place, (hparams,))
    return {
        "wall_s": time.perf_counter() - t0,
        "compile_s": compile_s,
        "step_s": step_s,
        "losses": losses.T.tolist(),  # [steps, R] -> [R][steps]
    }


def measure_case(family_name: str, size: str, runs: int, steps: int, workdir: Path) -> dict:
    """One case on this process's devices, both modes, side by side (sequential first, then
    stacked; the order is the same in every case)."""
    family = get_family(family_name)
    teacher = None
    if family_name == "clarinet":
        teacher = workdir / f"teacher_{size}"
        if not (teacher / "config.json").exists():
            write_teacher(size, teacher)
    configs = sweep_configs(family_name, size, runs, teacher)
    batches = synthetic_batches(configs[0], steps)
    n = jax.device_count()
    layout = layout_lib.choose_layout(
        runs, n, BATCH, backend=jax.default_backend(), num_steps=configs[0].train.num_steps
    )
    # The stack is measured even where the layout would train the runs one after another: the
    # table shows what the rule decided from.
    forced = layout if layout.mode == "stack" else layout_lib.stack_anyway(layout)
    sequential = run_sequential(family, configs, batches)
    stack = run_stacked(family, configs, batches, forced)
    row = {
        "family": family_name,
        "config": f"{family_name}:{size}",
        "size": size,
        "runs": runs,
        "devices": n,
        "steps": steps,
        "batch": BATCH,
        "layout": layout.describe(),
        "layout_mode": layout.mode,
        "stack_mesh": {"run": forced.run_shards, "data": forced.data_shards},
        "sequential": sequential,
        "stacked": stack,
    }
    return dict(row, **summarise(row))


def summarise(row: dict) -> dict:
    """Ratios of a case (above 1: the stack is faster) and the largest relative difference of
    the two modes' losses."""
    seq, st = row["sequential"], row["stacked"]
    run_steps = row["runs"] * row["steps"]
    a, b = np.asarray(seq["losses"]), np.asarray(st["losses"])
    return {
        "wall_ratio": seq["wall_s"] / st["wall_s"],
        "sequential_run_steps_per_s": run_steps / seq["step_s"],
        "stacked_run_steps_per_s": run_steps / st["step_s"],
        "steps_ratio": seq["step_s"] / st["step_s"],
        # What the trainer gets: the stack's ratio where the layout stacks, 1.0 where it falls
        # back to sequential runs (by construction).
        "chosen_wall_ratio": seq["wall_s"] / st["wall_s"] if row["layout_mode"] == "stack" else 1.0,
        "loss_max_rel_diff": float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-6))),
    }


# ------------------------------------------------------------------------ the processes


def _warm_up() -> None:
    """A process's first compilation pays one-time costs; spent here, not on the first case."""
    config = load_config(str(REPO / "experiments" / "wavenet.py:tiny"))
    family = get_family("wavenet")
    batch = family.example_batch(config)
    state = family.init_state(config, jax.random.PRNGKey(0), batch)
    jax.block_until_ready(jax.jit(family.train_step(config))(state, batch))


def _worker(spec: dict) -> list[dict]:
    workdir = Path(spec["workdir"])
    _warm_up()
    rows = []
    for size in spec["sizes"]:  # the small cases first: an interrupted run keeps them
        for family in spec["families"]:
            for runs in spec["runs"]:
                row = measure_case(family, size, runs, spec["steps"][size], workdir)
                print(json.dumps(row), flush=True)  # one line per case, as it is measured
                rows.append(row)
    return rows


def measure(plan: str = "full", log=print, on_row=lambda row: None) -> list[dict]:
    """Every case of ``PLANS[plan]``: one worker process per device count, one after another;
    ``on_row(row)`` is called as each case comes in."""
    if plan not in PLANS:
        raise UserError(f"no sweep benchmark plan {plan!r}; available: {sorted(PLANS)}")
    spec = dict(PLANS[plan])
    rows = []
    with tempfile.TemporaryDirectory(prefix="tts_jax_bench_sweep_") as tmp:
        spec["workdir"] = tmp
        for devices in spec["devices"]:
            env = dict(os.environ)
            flags = env.get("XLA_FLAGS", "")
            env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
            env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
            # Every run compiles afresh, as in a sweep by tts-jax (no persistent cache).
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            log(f"bench sweep: {devices} device(s) ...")
            with tempfile.TemporaryFile("w+") as err:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tts_jax.benchmarks.sweep",
                        "--worker",
                        json.dumps(spec),
                    ],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
                for line in proc.stdout:
                    rows.append(json.loads(line))
                    on_row(rows[-1])
                if proc.wait():
                    err.seek(0)
                    raise RuntimeError(f"sweep benchmark worker failed:\n{err.read()[-4000:]}")
    return rows


@register("sweep")
def sweep(config_spec=None, quick=False):
    """``tts-jax bench sweep``: the rows of :func:`measure` (``tools/bench_sweep.py`` also
    writes them as one JSON file and the table of docs/performance_sweeps.md)."""
    yield from measure("quick" if quick else "full", log=lambda line: None)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        raise SystemExit("usage: python -m tts_jax.benchmarks.sweep --worker SPEC_JSON")
    _worker(json.loads(sys.argv[2]))
