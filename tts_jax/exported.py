"""Exported models: a trained model's variables and config in three small files.

    DIR/config.json       the training run's resolved config
    DIR/variables.msgpack flax msgpack of {"params": ..., "batch_stats": ...} (float16 or 32)
    DIR/model.json        step, dtype, parameter count, sha256 of variables.msgpack, source

No optimiser state and no orbax directory: what a user needs to synthesise, small enough to
live in the repository (the shipped Tacotron 2 in data/ is one). Reading checks the sha256 and
every array's shape against the model the config builds, and names the file on a mismatch.
"""

from __future__ import annotations

import hashlib
import json

import jax
import numpy as np
from flax import serialization
from ml_collections import ConfigDict

from tts_jax.errors import UserError
from tts_jax.paths import resolve_config_paths, run_path, write_whole

VARIABLES = "variables.msgpack"
DTYPES = ("float32", "float16")


def same_shapes(got, want) -> bool:
    """Whether two trees hold arrays of the same names and shapes (``want`` may hold
    ``jax.ShapeDtypeStruct`` leaves); values and dtypes aside."""
    shapes = lambda t: jax.tree.map(lambda x: tuple(np.shape(x)), t)  # noqa: E731
    return shapes(got) == shapes(want)


def is_exported(path) -> bool:
    path = run_path(path)
    return (path / VARIABLES).is_file() and (path / "model.json").is_file()


def sha256(path) -> str:
    return hashlib.sha256(run_path(path).read_bytes()).hexdigest()


def write(out_dir, config: ConfigDict, variables: dict, step: int, dtype: str, source: str):
    """Writes the three files (each whole: :func:`tts_jax.paths.write_whole`); returns
    model.json's content."""
    if dtype not in DTYPES:
        raise UserError(f"export dtype must be one of {DTYPES}, got {dtype!r}")
    out = run_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    host = jax.tree.map(lambda x: np.asarray(x).astype(dtype), jax.device_get(variables))
    blob = serialization.msgpack_serialize(host)
    meta = {
        "step": int(step),
        "dtype": dtype,
        "parameters": int(sum(x.size for x in jax.tree.leaves(host.get("params", host)))),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "source": source,
        "family": config.model.family,
    }
    for name, data in (
        (VARIABLES, blob),
        ("config.json", json.dumps(config.to_dict(), indent=1).encode()),
        ("model.json", json.dumps(meta, indent=1).encode()),
    ):
        write_whole(out / name, data)
    return meta


def read(path, target_fn) -> tuple[ConfigDict, dict, dict]:
    """``(config, float32 variables, model.json)`` of an exported model.

    ``target_fn(config)`` returns the variables' expected shapes (e.g. ``jax.eval_shape`` of
    the family's init); a file whose arrays differ from them is refused, as is one whose
    sha256 is not the one recorded at export.
    """
    path = run_path(path)
    if not is_exported(path):
        raise UserError(f"{path} is not an exported model: {VARIABLES} and model.json expected")
    meta = json.loads((path / "model.json").read_text())
    blob = (path / VARIABLES).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.get("sha256"):
        raise UserError(
            f"{path / VARIABLES} is damaged: its sha256 is {digest}, model.json records "
            f"{meta.get('sha256')}"
        )
    config = ConfigDict(json.loads((path / "config.json").read_text()))
    resolve_config_paths(config)
    variables = serialization.msgpack_restore(blob)
    expected = target_fn(config)
    if not same_shapes(variables, expected):
        raise UserError(
            f"{path / VARIABLES} does not hold the model its config.json describes "
            "(parameter names or shapes differ)"
        )
    return config, jax.tree.map(lambda x: np.asarray(x, np.float32), variables), meta
