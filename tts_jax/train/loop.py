"""The one training loop every family plugs into: mesh, jitted step, checkpoints, summaries.

``train_and_evaluate(config, workdir)``:

* builds the family's data and state, places the state replicated and each batch sharded over
  the mesh's ``data`` axis (:mod:`tts_jax.train.mesh`);
* resumes from the newest checkpoint in ``workdir/checkpoints`` when there is one: params,
  optimiser, step, RNG and the data iterator's position, so the continued run is the run that
  was interrupted (tests/test_trainer.py checks the parameters bitwise);
* saves with orbax (asynchronously, keep-N, atomic: a checkpoint directory appears only when
  complete) every ``train.checkpoint_every`` steps, at the end, and on SIGTERM, after which it
  returns cleanly;
* stops (after a checkpoint) once ``train.max_minutes`` of wall time have passed in this
  invocation, when that is set: experiment scripts train for a stated CPU budget with it;
* blocks on the metrics every step. This is also what keeps XLA's CPU collectives from timing
  out when many steps are queued on fake devices.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import ConfigDict
from tqdm.auto import tqdm

from tts_jax.errors import UserError
from tts_jax.train import mesh as mesh_lib
from tts_jax.train.family import Family, get_family
from tts_jax.train.summary import SummaryWriter

log = logging.getLogger(__name__)


class _StopFlag:
    """Set by SIGTERM (preemption); the loop checkpoints and returns at the next step."""

    def __init__(self):
        self.set = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.set = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def any_host(self) -> bool:
        return _agree(self.set)


def save_config(config: ConfigDict, workdir: Path) -> None:
    """Writes ``workdir/config.json``; warns about fields changed since the saved one."""
    path = workdir / "config.json"
    new = json.loads(config.to_json_best_effort())
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(_diff(old, new))
        if changed:
            log.warning("config differs from the one saved in %s: %s", workdir, ", ".join(changed))
    if jax.process_index() == 0:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(new, indent=2, sort_keys=True))
        tmp.replace(path)


def _diff(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from _diff(a.get(k), b.get(k), f"{prefix}{k}.")
    elif a != b:
        yield prefix[:-1]


def checkpoint_manager(workdir: Path, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=True
    )
    return ocp.CheckpointManager(
        (workdir / "checkpoints").absolute(), options=options, item_names=("state", "data")
    )


def restore_state(mgr: ocp.CheckpointManager, target_state, step: int | None = None):
    """Restores ``(state, data_position)`` from step ``step`` (default: newest) into the
    shapes, dtypes and shardings of ``target_state``."""
    step = mgr.latest_step() if step is None else step
    restored = mgr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target_state), data=ocp.args.JsonRestore()
        ),
    )
    return restored.state, restored.data


def _mean_metrics(rows: list[dict]) -> dict:
    if not rows:
        return {}
    weights = np.array([float(r.get("weight", 1.0)) for r in rows])
    keys = [k for k in rows[0] if k != "weight"]
    return {k: float(np.sum([float(r[k]) for r in rows] * weights) / weights.sum()) for k in keys}


def train_and_evaluate(config: ConfigDict, workdir: str | Path, family: Family | None = None):
    """Trains ``config`` in ``workdir`` up to ``config.train.num_steps``; returns the state."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    family = family or get_family(config.model.family)
    tc = config.train
    if tc.num_steps < 0 or tc.checkpoint_every < 1 or tc.log_every < 1 or tc.eval_every < 1:
        raise UserError(
            "train.num_steps must be >= 0 and train.checkpoint_every, train.log_every, "
            "train.eval_every >= 1"
        )
    save_config(config, workdir)
    is_main = jax.process_index() == 0

    mesh = mesh_lib.make_mesh()
    mesh_lib.check_batch_size(tc.batch_size, mesh)
    batch_sharding = mesh_lib.data_sharding(mesh)
    state_sharding = mesh_lib.replicated(mesh)

    data = family.make_data(config, jax.process_index(), jax.process_count())
    for line in data.describe:
        _say(is_main, line)
    _say(
        is_main,
        f"devices: {jax.device_count()} x {jax.devices()[0].platform} over "
        f"{jax.process_count()} host(s); global batch {tc.batch_size}",
    )

    first = next(data.train)
    data.train.set_state({"epoch": 0, "index": 0})
    rng = jax.random.PRNGKey(config.seed)
    init = jax.jit(lambda r, b: family.init_state(config, r, b), out_shardings=state_sharding)
    state = init(rng, mesh_lib.to_global(first, batch_sharding))

    mgr = checkpoint_manager(workdir, tc.keep_checkpoints)
    if mgr.latest_step() is not None:
        state, position = restore_state(mgr, state)
        data.train.set_state(position)
        _say(is_main, f"resumed from step {int(state.step)} (data position {position})")
    start = int(state.step)

    train_step = jax.jit(
        family.train_step(config),
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=(state_sharding, None),
        donate_argnums=0,
    )
    eval_step = family.eval_step and jax.jit(
        family.eval_step(config), in_shardings=(state_sharding, batch_sharding)
    )
    writer = SummaryWriter(workdir)

    def save(step):
        mgr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data.train.get_state())
            ),
            force=True,
        )

    def evaluate(step):
        if eval_step is None or data.eval is None:
            return
        rows, first_batch = [], None
        for i, local in enumerate(data.eval()):
            if tc.eval_batches and i >= tc.eval_batches:
                break
            batch = mesh_lib.to_global(local, batch_sharding)
            if first_batch is None:
                first_batch = batch
            rows.append(jax.device_get(eval_step(state, batch)))
        metrics = _mean_metrics(rows)
        writer.scalars(step, metrics, prefix="eval")
        _say(is_main, f"step {step} eval: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if family.eval_summaries is not None and first_batch is not None and is_main:
            try:
                out = family.eval_summaries(config, state, first_batch)
            except Exception as e:  # noqa: BLE001 - pictures and audio are diagnostics only
                log.warning("step %d: eval summaries failed, training goes on: %r", step, e)
                out = {}
            writer.images(step, out.get("images", {}))
            writer.audio(step, out.get("audio", {}), config.data.sample_rate)
        writer.flush()

    bar = tqdm(
        total=tc.num_steps,
        initial=start,
        disable=not (is_main and tc.progress),
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    step = start
    history = []
    t0 = started = time.time()
    budget_s = 60.0 * tc.get("max_minutes", 0.0)
    try:
        with _StopFlag() as stop:
            while step < tc.num_steps:
                batch = mesh_lib.to_global(next(data.train), batch_sharding)
                state, metrics = train_step(state, batch)
                metrics = jax.device_get(metrics)  # blocks: one step in flight at a time
                step += 1
                bar.update(1)
                history.append(metrics)
                if not all(np.isfinite(float(v)) for v in metrics.values()):
                    log.warning("step %d: non-finite metrics %s", step, metrics)
                if step % tc.log_every == 0 or step == tc.num_steps:
                    mean = _mean_metrics(history)
                    mean["steps_per_second"] = len(history) / max(time.time() - t0, 1e-9)
                    writer.scalars(step, mean)
                    bar.set_postfix(loss=f"{mean.get('loss', float('nan')):.4f}")
                    history, t0 = [], time.time()
                if stop.any_host():
                    save(step)
                    _say(is_main, f"SIGTERM: saved checkpoint at step {step}, stopping")
                    break
                if budget_s and _agree(time.time() - started > budget_s):
                    save(step)
                    _say(is_main, f"time budget of {tc.max_minutes} min reached at step {step}")
                    break
                # Save before evaluating: a failing evaluation must not cost training.
                if step % tc.checkpoint_every == 0 or step == tc.num_steps:
                    save(step)
                if step % tc.eval_every == 0 or step == tc.num_steps:
                    evaluate(step)
        if mgr.latest_step() != step:
            save(step)
    finally:
        # Whatever happened, let an in-flight asynchronous save finish (or fail) cleanly.
        bar.close()
        mgr.wait_until_finished()
        mgr.close()
        writer.close()
    return state


def _agree(flag: bool) -> bool:
    """True on every host when it is true on any (clocks differ between hosts)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def _say(is_main: bool, line: str) -> None:
    if is_main:
        tqdm.write(line)


def restore_trained(
    workdir: str | Path, config: ConfigDict, family: Family, example_batch, step: int | None = None
):
    """A checkpoint's state of a training workdir, the newest unless ``step`` is given (for
    synthesis, export and scoring a run over its checkpoints)."""
    workdir = Path(workdir)
    target = jax.jit(lambda b: family.init_state(config, jax.random.PRNGKey(0), b))(example_batch)
    mgr = checkpoint_manager(workdir, 1)
    try:
        if mgr.latest_step() is None:
            raise UserError(f"{workdir} has no checkpoint yet (train it first)")
        if step is not None and step not in mgr.all_steps():
            raise UserError(f"{workdir} has no checkpoint of step {step}: {mgr.all_steps()}")
        state, _ = restore_state(mgr, target, step)
    finally:
        mgr.close()
    return state


def restore_params(workdir: str | Path):
    """The newest checkpoint's ``params`` of a training workdir as host numpy arrays, read
    without building the model (so it can run while another model's init is being traced:
    a student loading its frozen teacher)."""
    workdir = Path(workdir)
    mgr = checkpoint_manager(workdir, 1)
    try:
        step = mgr.latest_step()
        if step is None:
            raise UserError(f"{workdir} has no checkpoint yet (train it first)")
        with jax.ensure_compile_time_eval():
            restored = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    finally:
        mgr.close()
    return jax.tree.map(np.asarray, restored.state["params"])
