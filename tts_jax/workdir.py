"""A trained model on disk: the room every reader of a workdir goes through.

A training workdir holds::

    DIR/config.json          the run's resolved config (tts_jax.config + the experiment file)
    DIR/checkpoints/STEP/    orbax: "state" (the family's train state), "data" (input position)
    DIR/metrics.jsonl ...    the trainer's logs and summaries

An exported model (:mod:`tts_jax.exported`) holds config.json next to its variables instead of
checkpoints. :func:`read_config` reads either and checks the family; :func:`restore` and
:func:`load_variables` bring back the newest (or a given) checkpoint. The trainer writes
workdirs through the same functions. Nothing here imports a model, the CLI or evaluation.
"""

from __future__ import annotations

import json
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import ConfigDict

from tts_jax import exported
from tts_jax.errors import UserError
from tts_jax.family import Family, get_family
from tts_jax.paths import Path, resolve_config_paths, run_path, write_whole

CONFIG = "config.json"

log = logging.getLogger(__name__)


def read_config(path: str | os.PathLike, family: str | None = None) -> ConfigDict:
    """The resolved config saved in a training workdir or an exported model, checked to be of
    ``family`` when one is given. Its path fields come back absolute (a config saved with
    relative ones meant them against the current directory)."""
    file = run_path(path) / CONFIG
    if not file.is_file():
        raise UserError(f"{path} is not a training workdir or exported model: {file} is missing")
    try:
        config = ConfigDict(json.loads(file.read_text()))
    except ValueError as e:
        raise UserError(f"{file} is not valid JSON ({e})") from None
    if family is not None and config.model.family != family:
        raise UserError(f"{path} holds a {config.model.family!r} model, not {family}")
    resolve_config_paths(config)
    return config


def family_entry(path: str | os.PathLike, entry: str, what: str):
    """The family entry ``entry`` (a role, ``export``, ``evaluate``, ...) of the model at
    ``path``, or the UserError of :meth:`tts_jax.family.Family.require`."""
    return get_family(read_config(path).model.family).require(entry, what)


def save_config(config: ConfigDict, workdir: Path) -> None:
    """Writes ``workdir/config.json``; warns about fields changed since the saved one."""
    path = workdir / CONFIG
    new = json.loads(config.to_json_best_effort())
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(config_diff(old, new))
        if changed:
            log.warning("config differs from the one saved in %s: %s", workdir, ", ".join(changed))
    if jax.process_index() == 0:
        write_whole(path, json.dumps(new, indent=2, sort_keys=True))


def config_diff(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from config_diff(a.get(k), b.get(k), f"{prefix}{k}.")
    elif a != b:
        yield prefix[:-1]


def checkpoint_manager(workdir: Path, keep: int) -> ocp.CheckpointManager:
    """Orbax's manager of ``workdir/checkpoints`` (keep-N, asynchronous saves); the path is
    made absolute here too, as orbax misreads relative ones."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=True
    )
    return ocp.CheckpointManager(
        run_path(workdir) / "checkpoints", options=options, item_names=("state", "data")
    )


class UnreadableMetadata(Exception):
    """A checkpoint whose array metadata cannot be read (damaged, or written by something
    else): whether it restores is for a restore to tell."""


def checkpoint_arrays(workdir: Path, step: int):
    """The tree of array metadata (shape, dtype) that checkpoint ``step`` holds, read from
    disk without restoring anything; :class:`UnreadableMetadata` when it cannot be read."""
    where = run_path(workdir) / "checkpoints" / str(step) / "state"
    try:
        meta = ocp.StandardCheckpointer().metadata(where)
    except Exception as e:  # noqa: BLE001 - orbax raises many kinds for a damaged checkpoint
        raise UnreadableMetadata(f"{where}: {type(e).__name__}: {e}") from e
    tree = getattr(getattr(meta, "item_metadata", meta), "tree", None)
    if tree is None:
        raise UnreadableMetadata(f"{where}: orbax found no array metadata there")
    return tree


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


def write(path: str | os.PathLike, config: ConfigDict, state, step: int) -> None:
    """A new training workdir holding ``state`` as checkpoint ``step`` and ``config``, as the
    trainer would have written it (an imported model); its data position is the start. The
    config is written last: a folder left by a failure is not mistaken for a workdir."""
    path = run_path(path)
    if (path / CONFIG).exists() or (path / "checkpoints").exists():
        raise UserError(f"{path} already holds a training run; give a new folder")
    path.mkdir(parents=True, exist_ok=True)
    mgr = checkpoint_manager(path, 1)
    try:
        start = {"epoch": 0, "index": 0}
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(start))
        mgr.save(step, args=args, force=True)
        mgr.wait_until_finished()
    finally:
        mgr.close()
    save_config(config, path)


def _on_first_device(shapes):
    """A restore target: ``shapes``' shapes and dtypes, placed on this process's first device
    (whatever mesh wrote the checkpoint)."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), shapes)


def restore(
    path: str | os.PathLike, family: Family | str, *, config: ConfigDict | None = None, step=None
):
    """The train state in a training workdir's checkpoint, the newest unless ``step`` is given
    (synthesis, export, scoring a run over its checkpoints). ``family``: the Family or its name;
    ``config``: the saved one unless given."""
    family = get_family(family) if isinstance(family, str) else family
    config = config or read_config(path, family.name)
    batch = family.example_batch(config)
    # Shapes, dtypes and a placement are all a restore needs: traced, never compiled or run.
    target = _on_first_device(
        jax.eval_shape(lambda: family.init_state(config, jax.random.PRNGKey(0), batch))
    )
    mgr = checkpoint_manager(run_path(path), 1)
    try:
        if mgr.latest_step() is None:
            raise UserError(f"{path} has no checkpoint yet (train it first)")
        if step is not None and step not in mgr.all_steps():
            raise UserError(f"{path} has no checkpoint of step {step}: {mgr.all_steps()}")
        state, _ = restore_state(mgr, target, step)
    finally:
        mgr.close()
    return state


def restore_raw(path: str | os.PathLike, step: int | None = None) -> dict:
    """A checkpoint's train state as nested dicts of host numpy arrays (the newest unless
    ``step``), read without building the model: so it can run while another model's init is
    being traced (a student loading its frozen teacher), and on any mesh (a checkpoint saved
    on 4 devices reads on 1)."""
    path = run_path(path)
    mgr = checkpoint_manager(path, 1)
    try:
        step = mgr.latest_step() if step is None else step
        if step is None:
            raise UserError(f"{path} has no checkpoint yet (train it first)")
        try:
            arrays = checkpoint_arrays(path, step)
        except UnreadableMetadata as e:
            raise UserError(f"checkpoint {step} of {path} cannot be read ({e})") from None
        target = _on_first_device(arrays)
        with jax.ensure_compile_time_eval():
            restored = mgr.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
            )
    finally:
        mgr.close()
    return jax.tree.map(np.asarray, restored.state)


def restore_params(path: str | os.PathLike) -> dict:
    """The newest checkpoint's ``params`` (:func:`restore_raw`)."""
    return restore_raw(path)["params"]


def load_variables(path: str | os.PathLike, family: Family | str, step: int | None = None):
    """``(config, {"params", ...model_state}, step)`` of an exported model or of a training
    workdir's checkpoint (the newest unless ``step``), for families whose state is a
    :class:`tts_jax.train.state.TrainState`."""
    family = get_family(family) if isinstance(family, str) else family

    def shapes(config):
        batch = family.example_batch(config)
        state = jax.eval_shape(lambda: family.init_state(config, jax.random.PRNGKey(0), batch))
        return {"params": state.params, **state.model_state}

    if exported.is_exported(path):
        if step is not None:
            raise UserError(f"{path} is an exported model: it holds one step, not a choice")
        config, variables, meta = exported.read(path, shapes)
        return config, variables, int(meta["step"])
    config = read_config(path, family.name)
    state = restore(path, family, config=config, step=step)
    return config, {"params": state.params, **state.model_state}, int(state.step)
