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
import os
import re
import signal
import sys
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from ml_collections import ConfigDict
from tqdm.auto import tqdm

from tts_jax.errors import UserError
from tts_jax.family import Family, get_family
from tts_jax.paths import Path, check_bucket, is_remote, move_tree, run_path
from tts_jax.train import mesh as mesh_lib
from tts_jax.train.lock import WorkdirLock
from tts_jax.train.summary import SummaryWriter
from tts_jax.workdir import (
    UnreadableMetadata,
    checkpoint_arrays,
    checkpoint_manager,
    config_diff,
    restore_state,
    save_config,
)

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


def _path_names(path) -> str:
    return "/".join(re.findall(r"[A-Za-z0-9_]+", jax.tree_util.keystr(path)))


def _shapes(tree) -> dict[str, tuple]:
    return {_path_names(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def check_workdir(config: ConfigDict, workdir: Path) -> None:
    """Refuses, before anything in ``workdir`` is written, a workdir whose saved run is of
    another family (:func:`check_checkpoint_shapes` covers a changed model size)."""
    path = workdir / "config.json"
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}): not a training workdir?") from None
    family = saved.get("model", {}).get("family")
    if family != config.model.family:
        raise UserError(
            f"{workdir} holds a {family!r} run and this config trains {config.model.family!r}; "
            "give another --workdir"
        )


def model_fields_changed(config: ConfigDict, workdir: Path) -> list[str]:
    """The ``config.model`` fields whose values differ from those saved in
    ``workdir/config.json`` (none when nothing is saved)."""
    path = workdir / "config.json"
    if not path.is_file():
        return []
    old = json.loads(path.read_text()).get("model", {})
    return sorted(config_diff(old, json.loads(config.model.to_json_best_effort())))


def _refuse_changed_model(workdir: Path, step: int, fields: list[str], why: str):
    return UserError(
        f"{workdir}'s checkpoint {step} does not fit the model this config builds (model "
        f"fields changed: {', '.join(fields)}; {why}); nothing in the workdir was changed: "
        "train it with its saved config, or give another --workdir"
    )


def check_checkpoint_shapes(config: ConfigDict, workdir: Path, step: int, target_state) -> None:
    """Raises a UserError naming the differing model fields when checkpoint ``step`` was
    written by a model of other shapes than ``target_state`` and the saved config's model
    section differs from ``config``'s (a changed model size). Other shapes under an unchanged
    model section mean a damaged checkpoint: left to :func:`restore_newest_good`. Metadata that
    cannot be read decides nothing here: the restore tries the checkpoint and tells."""
    try:
        saved = _shapes(checkpoint_arrays(workdir, step))
    except UnreadableMetadata as e:
        log.warning("checkpoint %d: metadata unreadable (%s); trying to restore it", step, e)
        return
    wanted = _shapes(target_state)
    if saved == wanted:
        return
    differ = sorted(set(saved) ^ set(wanted)) + sorted(
        k for k in set(saved) & set(wanted) if saved[k] != wanted[k]
    )
    fields = model_fields_changed(config, workdir)
    if not fields:  # same model, other shapes on disk: damage, which the fallback handles
        return
    arrays = f"{', '.join(differ[:4])}{' ...' if len(differ) > 4 else ''}"
    raise _refuse_changed_model(workdir, step, fields, f"arrays differing: {arrays}")


def restore_newest_good(workdir: Path, mgr, target_state, keep: int, changed: list[str] = ()):
    """``(manager, state, data position)`` from the newest checkpoint that restores.

    A checkpoint that fails (truncated, overwritten or missing array data) is reported in one
    line and moved aside to ``workdir/damaged_checkpoints/`` (never deleted); the next older
    one is tried. When none restores, the error lists each with its reason. ``changed``: the
    model fields this run changed from the saved config; with any, a failing restore is taken
    for the changed model, not for damage, and refused by name with nothing moved.
    """
    failures = []
    while (step := mgr.latest_step()) is not None:
        try:
            state, position = restore_state(mgr, target_state, step)
            return mgr, state, position
        except Exception as e:  # noqa: BLE001 - any failure to read means a damaged checkpoint
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            if changed:
                mgr.close()
                raise _refuse_changed_model(
                    workdir, step, list(changed), f"its restore failed: {reason}"
                ) from None
            failures.append(f"step {step} ({reason})")
            mgr.close()
            if jax.process_index() == 0:
                aside = workdir / "damaged_checkpoints" / f"{step}.{int(time.time())}"
                move_tree(workdir / "checkpoints" / str(step), aside)
                log.warning(
                    "checkpoint %d cannot be restored (%s); moved to %s", step, reason, aside
                )
            if jax.process_count() > 1:
                multihost_utils.sync_global_devices(f"checkpoint {step} moved aside")
            mgr = checkpoint_manager(workdir, keep)
            if mgr.latest_step() == step:  # never try the same one twice
                mgr.close()
                raise UserError(
                    f"checkpoint {step} of {workdir} could not be moved aside"
                ) from None
    if failures:
        raise UserError(
            f"no checkpoint in {workdir / 'checkpoints'} can be restored (moved to "
            f"{workdir / 'damaged_checkpoints'}): " + "; ".join(failures)
        )
    return mgr, target_state, None


def _mean_metrics(rows: list[dict]) -> dict:
    if not rows:
        return {}
    weights = np.array([float(r.get("weight", 1.0)) for r in rows])
    keys = [k for k in rows[0] if k != "weight"]
    return {k: float(np.sum([float(r[k]) for r in rows] * weights) / weights.sum()) for k in keys}


def train_and_evaluate(
    config: ConfigDict, workdir: str | os.PathLike, family: Family | None = None
):
    """Trains ``config`` in ``workdir`` up to ``config.train.num_steps``; returns the state.
    ``workdir``: local (made absolute here if it is not), ``gs://`` or ``s3://``."""
    workdir = run_path(workdir)
    check_bucket(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"--workdir {workdir} is a file; give a directory")
    workdir.mkdir(parents=True, exist_ok=True)
    with WorkdirLock(workdir):
        try:
            return _train_and_evaluate(config, workdir, family or get_family(config.model.family))
        except (OSError, ValueError) as e:
            if isinstance(e, UserError) or not _storage_failure(workdir, e):
                raise
            raise UserError(
                f"the bucket of {workdir} failed while training ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}) after its client's retries; "
                "a checkpoint is used only once complete, so run the same command again to "
                "resume from the newest complete one"
            ) from None


_STATUS = re.compile(
    r"^(UNAVAILABLE|DEADLINE_EXCEEDED|ABORTED|NOT_FOUND|PERMISSION_DENIED|"
    r"UNAUTHENTICATED|RESOURCE_EXHAUSTED|INTERNAL|UNKNOWN)\b"
)


def _storage_failure(workdir: Path, e: Exception) -> bool:
    """Whether ``e``, raised while training in ``workdir``, is its bucket failing: an I/O error
    (gcsfs raises OSError kinds, aiohttp's included) or a tensorstore status, in a run whose
    workdir is in a bucket."""
    return is_remote(workdir) and (isinstance(e, OSError) or bool(_STATUS.match(str(e))))


def _train_and_evaluate(config: ConfigDict, workdir: Path, family: Family):
    tc = config.train
    if tc.num_steps < 0 or tc.checkpoint_every < 1 or tc.log_every < 1 or tc.eval_every < 1:
        raise UserError(
            "train.num_steps must be >= 0 and train.checkpoint_every, train.log_every, "
            "train.eval_every >= 1"
        )
    if tc.max_skipped_steps < 1:
        raise UserError("train.max_skipped_steps must be >= 1")
    if tc.batch_size < 1:
        raise UserError(f"train.batch_size must be >= 1, got {tc.batch_size}")
    check_workdir(config, workdir)
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
        check_checkpoint_shapes(config, workdir, mgr.latest_step(), state)
        changed = model_fields_changed(config, workdir)
        mgr, state, position = restore_newest_good(
            workdir, mgr, state, tc.keep_checkpoints, changed
        )
        if position is not None:
            data.train.set_state(position)
            _say(is_main, f"resumed from step {int(state.step)} (data position {position})")
    start = int(state.step)
    # Only now that the run is known to fit the workdir is anything in it written.
    save_config(config, workdir)

    train_step = jax.jit(
        family.train_step(config),
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=(state_sharding, None),
        donate_argnums=0,
    )
    eval_step = family.eval_step and jax.jit(
        family.eval_step(config), in_shardings=(state_sharding, batch_sharding)
    )
    writer = SummaryWriter(workdir, resumed_at=start)

    def save(step):
        mgr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data.train.get_state())
            ),
            force=True,
        )
        writer.flush()  # in a bucket the metrics log is written whole: now, with the checkpoint

    def evaluate(step):
        if eval_step is None or data.eval is None:
            return
        rows, first_batch = [], None
        for i, local in enumerate(data.eval()):
            if tc.eval_batches and i >= tc.eval_batches:
                break
            batch = mesh_lib.to_global(local, batch_sharding)
            if first_batch is None:
                first_batch = local  # this host's rows: summaries run on host 0 alone
            rows.append(jax.device_get(eval_step(state, batch)))
        metrics = _mean_metrics(rows)
        writer.scalars(step, metrics, prefix="eval")
        _say(is_main, f"step {step} eval: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if family.eval_summaries is not None and first_batch is not None and is_main:
            try:
                # A host copy: on several hosts the state's arrays span devices this
                # process cannot address, and summaries run eagerly on host 0 only.
                out = family.eval_summaries(config, jax.device_get(state), first_batch)
            except Exception as e:  # noqa: BLE001 - pictures and audio are diagnostics only
                log.warning("step %d: eval summaries failed, training goes on: %r", step, e)
                out = {}
            writer.images(step, out.get("images", {}))
            writer.audio(step, out.get("audio", {}), config.data.sample_rate)
        writer.flush()

    # A terminal gets the progress bar; a log file (batch jobs, clusters) gets plain lines.
    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=tc.num_steps,
        initial=start,
        disable=not (is_main and tc.progress and interactive),
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    step = start
    rate: list[tuple[int, float]] = []  # (step, time) at each log line: the ETA's clock
    skipped = 0  # consecutive non-finite steps
    history = []
    t0 = started = time.time()
    try:
        with _StopFlag() as stop:
            while step < tc.num_steps:
                batch = mesh_lib.to_global(next(data.train), batch_sharding)
                state, metrics = train_step(state, batch)
                metrics = jax.device_get(metrics)  # blocks: one step in flight at a time
                step += 1
                bar.update(1)
                history.append(metrics)
                if metrics.get("skipped", 0.0) > 0:
                    skipped += 1
                    log.warning(
                        "step %d: non-finite loss or gradient, update skipped (%d in a row)",
                        step,
                        skipped,
                    )
                else:
                    skipped = 0
                if step % tc.log_every == 0 or step == tc.num_steps:
                    mean = _mean_metrics(history)
                    mean["steps_per_second"] = len(history) / max(time.time() - t0, 1e-9)
                    writer.scalars(step, mean)
                    bar.set_postfix(loss=f"{mean.get('loss', float('nan')):.4f}")
                    if not interactive and tc.progress:
                        _say(is_main, _log_line(step, tc.num_steps, mean, rate))
                    rate.append((step, time.time()))
                    history, t0 = [], time.time()
                if skipped >= tc.max_skipped_steps:
                    raise UserError(
                        f"step {step}: {skipped} updates in a row had a non-finite loss or "
                        f"gradient and were skipped; the run stops without saving (newest "
                        f"checkpoint: step {mgr.latest_step()}). Lower optim.learning_rate "
                        "or look for bad data, then run again to resume from it"
                    )
                if end_of_step(step, tc, stop, started, save, evaluate, "checkpoint"):
                    break
        if mgr.latest_step() != step:
            save(step)
    finally:
        # Whatever happened, let an in-flight asynchronous save finish (or fail) cleanly.
        bar.close()
        mgr.wait_until_finished()
        mgr.close()
        writer.close()
    return state


def end_of_step(step: int, tc, stop: _StopFlag, started: float, save, evaluate, what: str) -> bool:
    """What follows training step ``step`` (of ``tc = config.train``), in the loop and in the
    stacked trainer alike: on SIGTERM, or once ``train.max_minutes`` of wall time have passed
    since ``started``, ``save(step)`` and return True (stop); else save and ``evaluate(step)``
    when they are due, saving first (a failing evaluation must not cost training). ``what``
    names what a save writes, for the log line."""
    is_main = jax.process_index() == 0
    if stop.any_host():
        save(step)
        _say(is_main, f"SIGTERM: saved {what} at step {step}, stopping")
        return True
    budget_s = 60.0 * tc.get("max_minutes", 0.0)
    if budget_s and _agree(time.time() - started > budget_s):
        save(step)
        _say(is_main, f"time budget of {tc.max_minutes} min reached at step {step}")
        return True
    if step % tc.checkpoint_every == 0 or step == tc.num_steps:
        save(step)
    if step % tc.eval_every == 0 or step == tc.num_steps:
        evaluate(step)
    return False


def _agree(flag: bool) -> bool:
    """True on every host when it is true on any (clocks differ between hosts)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.array([flag]))))


def _log_line(step: int, total: int, mean: dict, rate: list[tuple[int, float]]) -> str:
    """``step 200/1000  loss 1.234  after 0.56 ...  3.1 steps/s  ETA 4m18s`` for log files.
    The ETA starts at the second line: the first interval holds the compilation."""
    keys = sorted(mean, key=lambda k: (k != "loss", k))  # the loss first
    terms = "  ".join(
        f"{k} {mean[k]:.4g}" for k in keys if k not in ("steps_per_second", "learning_rate")
    )
    line = f"step {step}/{total}  {terms}  {mean['steps_per_second']:.3g} steps/s"
    if rate:
        (s0, t0), now = rate[0], time.time()
        if step > s0 and now > t0:
            left = (total - step) * (now - t0) / (step - s0)
            line += f"  ETA {int(left // 3600)}h{int(left % 3600 // 60):02d}m{int(left % 60):02d}s"
    return line


def _say(is_main: bool, line: str) -> None:
    if is_main:
        tqdm.write(line)
