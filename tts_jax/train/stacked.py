"""A stack of runs trained as one program: the runs of a study that build the same shapes,
side by side on a leading run axis, each still an ordinary run in its own workdir.

``train_stack(configs, workdirs)``:

* checks that the configs differ only in what may differ inside a stack (:func:`check_stack`):
  ``seed`` (its init and dropout; the data order too unless ``data.seed`` is set, and every
  run of a stack sees the same batches, so seeds stack when ``data.seed`` is set);
  ``optim.learning_rate`` when the family gives a :class:`~tts_jax.family.Stacking`
  optimiser; the ``config.model`` fields its stacking turns into numbers (ClariNet: the
  objective and its weights). Anything else (a size, the batch, the data, the schedule's
  shape) changes code or shapes, and is refused by name;
* builds ONE state structure with a leading run axis: the family's ``init_state`` is
  ``vmap``-ped over the runs' seeds, so that every run shares one static optax transformation
  (states of separate ``init_state`` calls do not stack: their transformations are pytree
  metadata). A run's learning rate is injected into its optimiser state
  (``optax.inject_hyperparams``); its loss weights reach the step as an array;
* ``vmap``s the family's pure step over the run axis and feeds every run the same batches;
  each run draws its own dropout from its own ``state.rng``;
* places the run axis on a mesh axis ``run`` beside ``data`` where the devices allow it
  (:func:`stack_mesh`), else leaves it unsplit; on several hosts the run axis spans them and
  each host loads the batch rows its devices need (:func:`batch_shard`);
* writes each run's slice as the workdir a lone run writes: ``config.json``, ``metrics.jsonl``,
  checkpoints through :func:`tts_jax.workdir.checkpoint_manager` in the layout
  ``train_and_evaluate`` and :func:`tts_jax.workdir.restore` read (the injected learning rate
  is unwrapped, so the optimiser state is the lone run's);
* resumes a restarted stack from its runs' newest common checkpoint step (checkpoints a run
  holds past it, left by a kill between two runs' saves, are moved aside, never deleted);
* keeps faults inside their run: a run whose loss goes non-finite has its own update skipped
  (the family's step does that, per run under ``vmap``); after ``train.max_skipped_steps``
  skips in a row it is marked failed (``failed.json`` in its workdir, no more checkpoints or
  logs) and left out of a restarted stack, while the others train on.

Evaluation summaries (pictures, audio) are not written for stacked runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from ml_collections import ConfigDict
from tqdm.auto import tqdm

from tts_jax.config import data_seed
from tts_jax.errors import UserError
from tts_jax.family import Family, get_family
from tts_jax.nn.run_axis import stacked_layers
from tts_jax.paths import Path, move_tree, run_path, write_whole
from tts_jax.train import mesh as mesh_lib
from tts_jax.train.layout import choose_layout, layout_mesh, stack_anyway
from tts_jax.train.lock import WorkdirLock
from tts_jax.train.loop import _mean_metrics, _StopFlag, check_workdir, end_of_step
from tts_jax.train.optim import make_schedule
from tts_jax.train.summary import SummaryWriter
from tts_jax.workdir import checkpoint_manager, restore_state, save_config

log = logging.getLogger(__name__)

FAILED = "failed.json"


# ------------------------------------------------------------------------------ the group


def stack_fields(family: Family) -> tuple[str, ...]:
    """The config fields (dotted) that may differ between the runs of one stack of
    ``family``."""
    fields = ["seed"]
    stacking = family.stacking
    if stacking is not None and stacking.optimizer is not None:
        fields.append("optim.learning_rate")
    if stacking is not None and stacking.train_step is not None:
        fields += [f"model.{k}" for k in stacking.model_fields]
    return tuple(fields)


def _flat(config: ConfigDict) -> dict:
    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    return dict(walk(json.loads(config.to_json_best_effort()), ""))


def stack_key(config: ConfigDict, family: Family) -> str:
    """What must be equal for runs of ``family`` to share a stack: ``config`` without the
    fields that may differ (:func:`stack_fields`), and the seed of its data order. Runs with
    equal keys pass :func:`check_stack`."""
    allowed = stack_fields(family)
    kept = {k: v for k, v in _flat(config).items() if k not in allowed}
    return json.dumps([sorted(kept.items()), data_seed(config)], default=repr)


def check_stack(configs: list[ConfigDict], names: list[str], family: Family) -> None:
    """Raises a UserError naming the first field, and the two runs, where ``configs`` differ
    in something a stack cannot hold (see :func:`stack_fields`)."""
    if not configs:
        raise UserError("a stack needs at least one run")
    if len(set(names)) != len(names):
        raise UserError(f"the runs of a stack need distinct names, got {names}")
    allowed = stack_fields(family)
    first = _flat(configs[0])
    for config, name in zip(configs[1:], names[1:], strict=True):
        flat = _flat(config)
        for key in sorted(set(first) | set(flat)):
            if key in allowed or first.get(key) == flat.get(key):
                continue
            raise UserError(
                f"runs {names[0]!r} and {name!r} differ in {key} ({first.get(key)!r} vs "
                f"{flat.get(key)!r}), which a stack of {family.name!r} runs cannot hold (it "
                f"changes code or shapes); inside a stack only {', '.join(allowed)} may differ: "
                "train them in separate stacks, or one after another"
            )
        if data_seed(config) != data_seed(configs[0]):
            raise UserError(
                f"runs {names[0]!r} and {name!r} differ in seed, which also orders their "
                "training data (data.seed is unset), and a stack feeds every run the same "
                "batches: set data.seed to one value for the stack, or stack them apart"
            )


# ------------------------------------------------------------------------------ the mesh


def stack_mesh(runs: int, batch_size: int, devices=None) -> Mesh:
    """A mesh ``(run, data)``. On one host, the layout rule's split
    (:func:`tts_jax.train.layout.choose_layout`: the run axis over the largest divisor of
    ``runs`` that fits the devices, each group's batch over the largest ``data`` size that
    divides it and fits the devices left to it). Over several hosts, ``gcd(runs, devices)``
    groups, so that every host holds whole groups. With fewer devices than runs, several runs
    share a device."""
    devices = list(jax.devices() if devices is None else devices)
    if len({d.process_index for d in devices}) == 1:
        rule = choose_layout(
            runs, len(devices), batch_size, backend=devices[0].platform, num_steps=0
        )
        return layout_mesh(stack_anyway(rule), devices)
    run = math.gcd(runs, len(devices))
    data = len(devices) // run
    while batch_size % data:
        data -= 1
    grid = np.asarray(devices[: run * data]).reshape(run, data)
    return Mesh(grid, ("run", "data"))


def batch_shard(mesh: Mesh) -> tuple[int, int]:
    """``(index, count)``: which of ``count`` equal slices of each global batch this host
    loads. The batch is split over the mesh's ``data`` axis only: where the run axis spans
    the hosts (each holding whole ``data`` rows of the mesh), every host loads the whole
    batch; where the data axis spans them, each loads its own slice of it."""
    grid = mesh.devices  # [run, data]
    mine = sorted(
        {j for (_, j), d in np.ndenumerate(grid) if d.process_index == jax.process_index()}
    )
    per = len(mine)
    return mine[0] // per, grid.shape[1] // per


def describe_layout(runs: int, mesh: Mesh) -> str:
    """``"5 runs in 1 program on 1 device"`` and, on several, how the mesh splits them."""
    n = mesh.devices.size
    line = f"{runs} run{'s' * (runs != 1)} in 1 program on {n} device{'s' * (n != 1)}"
    hosts = len({d.process_index for d in mesh.devices.flat})
    if hosts > 1:
        line += f" over {hosts} hosts"
    if n > 1:
        line += f" (mesh run={mesh.shape['run']} x data={mesh.shape['data']})"
    return line


# ----------------------------------------------------------------------------- the state


@dataclasses.dataclass(frozen=True)
class _Stack:
    """The pure pieces of one stack: how its state is built, stepped and sliced."""

    family: Family
    configs: tuple
    inject: bool  # whether the learning rate is injected into the optimiser state

    @property
    def config(self):
        return self.configs[0]

    def tx(self):
        """The stack's one optax transformation."""
        opt = self.family.stacking.optimizer
        factory = lambda learning_rate: opt(self.config, learning_rate)  # noqa: E731
        return optax.inject_hyperparams(factory)(learning_rate=self.config.optim.learning_rate)

    def learning_rates(self):
        return jnp.asarray([c.optim.learning_rate for c in self.configs], jnp.float32)

    def hparams(self) -> dict:
        """``{name: [R, ...]}``: every run's numbers for the step."""
        stacking = self.family.stacking
        if stacking is None or stacking.hparams is None:
            return {}
        rows = [stacking.hparams(c) for c in self.configs]
        return {k: jnp.stack([jnp.asarray(r[k]) for r in rows]) for k in rows[0]}

    def init(self, rngs, batch):
        """The stacked state ``[R, ...]`` of runs seeded by ``rngs`` ``[R, 2]``."""
        tx = self.tx() if self.inject else None

        def one(rng, lr):
            state = self.family.init_state(self.config, rng, batch)
            if tx is None:
                return state
            opt_state = tx.init(state.params)
            hyper = dict(opt_state.hyperparams, learning_rate=lr)
            return state.replace(tx=tx, opt_state=opt_state._replace(hyperparams=hyper))

        return jax.vmap(one)(rngs, self.learning_rates())

    def step(self):
        """``(stacked state, batch, hparams [R, ...]) -> (stacked state, metrics [R])``."""
        stacking = self.family.stacking
        if stacking is not None and stacking.train_step is not None:
            one = stacking.train_step(list(self.configs))
        else:
            lone = self.family.train_step(self.config)
            one = lambda state, batch, hparams: lone(state, batch)  # noqa: E731
        if not self.inject:
            return jax.vmap(one, in_axes=(0, None, 0))

        def with_rate(state, batch, hparams):
            new, metrics = one(state, batch, hparams)
            if "learning_rate" in metrics:  # the run's own rate, not the first run's
                rate = state.opt_state.hyperparams["learning_rate"]
                metrics["learning_rate"] = make_schedule(self.config.optim, rate)(state.step)
            return new, metrics

        return jax.vmap(with_rate, in_axes=(0, None, 0))

    def run_slice(self, state, k: int):
        """Run ``k``'s state as a lone run holds it (the injected rate unwrapped)."""
        one = jax.tree.map(lambda x: x[k], state)
        if self.inject:
            one = one.replace(opt_state=one.opt_state.inner_state)
        return one

    def restack(self, stacked, runs: list):
        """``stacked`` with its arrays replaced by those of the lone ``runs`` (restored
        checkpoints); the injected rates stay the stack's."""
        lone = jax.tree.map(lambda *xs: jnp.stack(xs), *runs)
        if not self.inject:
            return lone
        # The count only drives hyperparameter schedules, which numbers have none of; a copy
        # (the step is donated to the train step, and one buffer cannot be donated twice).
        opt = stacked.opt_state._replace(inner_state=lone.opt_state, count=jnp.copy(lone.step))
        return lone.replace(tx=stacked.tx, opt_state=opt)


def _stack(family: Family, configs) -> _Stack:
    rates = {c.optim.learning_rate for c in configs}
    inject = (
        len(rates) > 1 and family.stacking is not None and family.stacking.optimizer is not None
    )
    return _Stack(family, tuple(configs), inject)


# ----------------------------------------------------------------------------- training


def train_stack(
    configs: list[ConfigDict],
    workdirs: list[str | os.PathLike],
    family: Family | None = None,
) -> dict:
    """Trains ``configs[k]`` in ``workdirs[k]`` for every k, as one program, up to
    ``train.num_steps`` (or resumes the stack). Returns ``{"layout": str, "runs": [{"name",
    "workdir", "step", "failed"}]}``; a failed run's row says at which step and why."""
    if len(configs) != len(workdirs):
        raise UserError(f"{len(configs)} configs for {len(workdirs)} workdirs")
    workdirs = [run_path(w) for w in workdirs]
    names = [w.name for w in workdirs]
    family = family or get_family(configs[0].model.family)
    check_stack(configs, names, family)
    tc = configs[0].train
    if tc.num_steps < 0 or tc.checkpoint_every < 1 or tc.log_every < 1 or tc.eval_every < 1:
        raise UserError(
            "train.num_steps must be >= 0 and train.checkpoint_every, train.log_every, "
            "train.eval_every >= 1"
        )
    if tc.max_skipped_steps < 1:
        raise UserError("train.max_skipped_steps must be >= 1")
    for config, workdir in zip(configs, workdirs, strict=True):
        if workdir.exists() and not workdir.is_dir():
            raise UserError(f"{workdir} is a file; give a directory")
        check_workdir(config, workdir)

    # A run that failed in an earlier stack stays out of this one: continue it alone.
    rows = {}
    for name, workdir in zip(names, workdirs, strict=True):
        if (workdir / FAILED).is_file():
            rows[name] = dict(json.loads((workdir / FAILED).read_text()), name=name)
    keep = [i for i, n in enumerate(names) if n not in rows]
    live = [configs[i] for i in keep], [workdirs[i] for i in keep]
    layout = "no run left to train"
    if keep:
        with contextlib.ExitStack() as locks:
            for workdir in live[1]:
                workdir.mkdir(parents=True, exist_ok=True)
                locks.enter_context(WorkdirLock(workdir))
            layout, trained = _train(family, *live)
        rows.update(trained)
    return {"layout": layout, "runs": [rows[n] for n in names]}


def common_step(steps: list[list[int]]) -> int | None:
    """The newest checkpoint step every run holds (None when they share none)."""
    shared = set(steps[0]).intersection(*steps[1:]) if steps else set()
    return max(shared) if shared else None


def _train(family: Family, configs: list, workdirs: list[Path]) -> tuple[str, dict]:
    tc = configs[0].train
    names = [w.name for w in workdirs]
    runs = len(configs)
    is_main = jax.process_index() == 0
    stack = _stack(family, configs)

    mesh = stack_mesh(runs, tc.batch_size)
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    state_sharding = NamedSharding(mesh, PartitionSpec("run"))
    layout = describe_layout(runs, mesh)

    data = family.make_data(configs[0], *batch_shard(mesh))
    for line in data.describe:
        _say(is_main, line)
    _say(is_main, f"stack: {layout}; global batch {tc.batch_size}")

    first = next(data.train)
    data.train.set_state({"epoch": 0, "index": 0})
    # Host numbers, the same on every host (an array on one host's device cannot enter a
    # program whose state spans several hosts).
    rngs = np.stack([np.asarray(jax.random.PRNGKey(c.seed)) for c in configs])
    init = jax.jit(stack.init, out_shardings=state_sharding)
    state = init(rngs, mesh_lib.to_global(first, batch_sharding))
    hparams = jax.device_put(jax.tree.map(np.asarray, stack.hparams()), state_sharding)

    managers = [checkpoint_manager(w, tc.keep_checkpoints) for w in workdirs]
    try:
        start, resumed = 0, _resume(stack, state, managers, workdirs)
        if resumed is not None:
            state, position, start = resumed
            data.train.set_state(position)
            state = jax.device_put(state, state_sharding)
            _say(is_main, f"stack resumed from step {start} (data {position})")
        return layout, _loop(
            stack, state, start, hparams, data, managers, workdirs, names, mesh, batch_sharding
        )
    finally:
        for mgr in managers:
            mgr.wait_until_finished()
            mgr.close()


def _resume(stack: _Stack, state, managers, workdirs):
    """``(stacked state, data position, step)`` restored from the runs' newest common
    checkpoint, or None when there is none to resume from."""
    step = common_step([list(m.all_steps()) for m in managers])
    if step is None:
        if any(m.latest_step() is not None for m in managers):
            held = {w.name: list(m.all_steps()) for w, m in zip(workdirs, managers, strict=True)}
            raise UserError(
                f"the runs of this stack share no checkpoint step ({held}): they were not "
                "trained as one stack; train them one after another"
            )
        return None
    for i, (mgr, workdir) in enumerate(zip(managers, workdirs, strict=True)):
        newer = [s for s in mgr.all_steps() if s > step]
        if newer:
            mgr.close()
            for s in newer:
                aside = workdir / "superseded_checkpoints" / f"{s}.{int(time.time())}"
                move_tree(workdir / "checkpoints" / str(s), aside)
                log.warning(
                    "%s: checkpoint %d is newer than the stack's common step %d; moved to %s",
                    workdir,
                    s,
                    step,
                    aside,
                )
            managers[i] = checkpoint_manager(workdir, stack.config.train.keep_checkpoints)
    restored, positions = [], []
    for k, mgr in enumerate(managers):
        one, position = restore_state(mgr, stack.run_slice(state, k), step)
        restored.append(one)
        positions.append(position)
    if any(p != positions[0] for p in positions):
        raise UserError(
            f"the runs' checkpoints of step {step} hold different data positions {positions}: "
            "they were not trained as one stack"
        )
    return stack.restack(state, restored), positions[0], step


def _loop(stack, state, start, hparams, data, managers, workdirs, names, mesh, batch_sharding):
    tc = stack.config.train
    is_main = jax.process_index() == 0
    runs = len(names)
    state_sharding = NamedSharding(mesh, PartitionSpec("run"))
    # Metrics [R] replicated: every host reads every run's (the run axis may span hosts).
    replicated = NamedSharding(mesh, PartitionSpec())
    train_step = jax.jit(
        stacked_layers(stack.step()),  # layers in their stacked form (tts_jax/nn/run_axis.py)
        in_shardings=(state_sharding, batch_sharding, state_sharding),
        out_shardings=(state_sharding, replicated),
        donate_argnums=0,
    )
    eval_step = stack.family.eval_step and jax.jit(
        jax.vmap(stack.family.eval_step(stack.config), in_axes=(0, None)),
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=replicated,
    )
    for config, workdir in zip(stack.configs, workdirs, strict=True):
        save_config(config, workdir)
    writers = [SummaryWriter(w, resumed_at=start) for w in workdirs]
    failed: dict[int, dict] = {}
    skipped = np.zeros(runs, np.int64)
    history: list[list[dict]] = [[] for _ in range(runs)]

    def save(step):
        position = data.train.get_state()
        for k, mgr in enumerate(managers):
            if k in failed:
                continue
            args = ocp.args.Composite(
                state=ocp.args.StandardSave(stack.run_slice(state, k)),
                data=ocp.args.JsonSave(position),
            )
            mgr.save(step, args=args, force=True)
            if jax.process_count() > 1:
                # The runs' managers sync the hosts in their background threads; one at a
                # time, or the hosts' barriers interleave in different orders and hang.
                mgr.wait_until_finished()
            writers[k].flush()

    def evaluate(step):
        if eval_step is None or data.eval is None:
            return
        rows = []
        for i, local in enumerate(data.eval()):
            if tc.eval_batches and i >= tc.eval_batches:
                break
            batch = mesh_lib.to_global(local, batch_sharding)
            rows.append(jax.device_get(eval_step(state, batch)))
        for k in range(runs):
            if k in failed or not rows:
                continue
            metrics = _mean_metrics([{m: v[k] for m, v in r.items()} for r in rows])
            writers[k].scalars(step, metrics, prefix="eval")
            writers[k].flush()
        _say(is_main, f"step {step}: evaluated {runs - len(failed)} run(s)")

    step = window = start
    t0 = started = time.time()
    try:
        with _StopFlag() as stop:
            while step < tc.num_steps:
                batch = mesh_lib.to_global(next(data.train), batch_sharding)
                state, metrics = train_step(state, batch, hparams)
                metrics = jax.device_get(metrics)  # blocks: one step in flight at a time
                step += 1
                for k in range(runs):
                    if k in failed:
                        continue
                    row = {m: v[k] for m, v in metrics.items()}
                    history[k].append(row)
                    skipped[k] = skipped[k] + 1 if row.get("skipped", 0.0) > 0 else 0
                if step % tc.log_every == 0 or step == tc.num_steps:
                    rate = (step - window) / max(time.time() - t0, 1e-9)
                    for k in range(runs):
                        if k not in failed and history[k]:
                            mean = dict(_mean_metrics(history[k]), steps_per_second=rate)
                            writers[k].scalars(step, mean)
                        history[k] = []
                    t0, window = time.time(), step
                for k in np.flatnonzero(skipped >= tc.max_skipped_steps):
                    if int(k) not in failed:
                        failed[int(k)] = _fail(workdirs[k], step, int(skipped[k]), managers[k])
                        writers[k].flush()
                if len(failed) == runs:
                    raise UserError(
                        f"step {step}: every run of the stack had {tc.max_skipped_steps} "
                        "non-finite updates in a row; see each run's failed.json"
                    )
                if end_of_step(step, tc, stop, started, save, evaluate, "the stack's checkpoints"):
                    break
        if any(managers[k].latest_step() != step for k in range(runs) if k not in failed):
            save(step)
    finally:
        for w in writers:
            w.close()
    rows = {}
    for k, name in enumerate(names):
        rows[name] = (
            dict(failed[k], name=name)
            if k in failed
            else {
                "name": name,
                "workdir": str(workdirs[k]),
                "step": step,
                "failed": False,
            }
        )
    return rows


def _fail(workdir: Path, step: int, skipped: int, mgr) -> dict:
    """Marks the run in ``workdir`` failed (``failed.json``); returns its report row."""
    row = {
        "workdir": str(workdir),
        "step": step,
        "failed": True,
        "reason": (
            f"{skipped} updates in a row had a non-finite loss or gradient and were skipped "
            f"(newest checkpoint: step {mgr.latest_step()}); lower optim.learning_rate or "
            "look for bad data, then continue it alone with tts-jax train"
        ),
    }
    log.warning("%s failed at step %d: %s", workdir, step, row["reason"])
    if jax.process_index() == 0:
        write_whole(workdir / FAILED, json.dumps(row, indent=1))
    return row


def _say(is_main: bool, line: str) -> None:
    if is_main:
        tqdm.write(line)
