"""What every verb's parser shares: argument types, ``--out`` checks, ``--config.*`` overrides.

Light on purpose (argparse, :mod:`tts_jax.paths`, :mod:`tts_jax.errors`): the top-level parser
imports it, and ``tts-jax --help`` must not wait for JAX or TensorFlow.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
from pathlib import Path

from tts_jax.errors import UserError
from tts_jax.paths import local_path, run_path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _path_type(make, what: str):
    """An argparse type: ``make`` (:mod:`tts_jax.paths`) turns what was typed into a path the
    moment it is parsed, so no function below sees a relative one; its refusal is argparse's
    usage error."""

    def convert(text: str):
        try:
            return make(text) if make is run_path else make(text, what)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = what
    return convert


RUN = _path_type(run_path, "a run's path")  # local, gs:// or s3://: workdirs, exports
LOCAL = _path_type(local_path, "a local path")  # inputs and outputs each host keeps itself


def data_path(text: str):
    """``--data``: a corpus folder (made absolute) or a TFDS name such as ``tfds:ljspeech``."""
    return text if text.startswith("tfds:") else LOCAL(text)


def check_out(args) -> None:
    """``--out`` must be a file path for verbs that write one file, a folder path otherwise."""
    out = getattr(args, "out", None) or getattr(args, "out_dir", None)
    kind = getattr(args, "out_kind", None)
    if not out or kind is None:
        return
    if kind == "file" and out.is_dir():
        raise UserError(f"--out {out} is a folder; expected a file name such as out.wav")
    if kind == "dir" and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; expected a folder")


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` as (the rest, the ``--config.a.b=VALUE`` overrides); one without ``=`` is
    refused."""
    for a in argv:
        if a.startswith("--config.") and "=" not in a:
            raise UserError(f"override {a!r} needs a value after '=': {a}=VALUE")
    overrides = [a for a in argv if a.startswith("--config.")]
    rest = [a for a in argv if not a.startswith("--config.")]
    return rest, overrides


def refuse_overrides(args) -> None:
    """A UserError when ``args`` carries ``--config.*`` overrides its verb does not take."""
    if args.overrides:
        raise UserError(
            f"{args.command} takes no --config.* overrides (got {args.overrides[0]}); "
            "`tts-jax train --help` says where they go"
        )


def listing(names) -> str:
    """``["a", "b"]`` -> ``"a, b"``; ``"none"`` for no names (for help texts)."""
    return ", ".join(names) or "none"


def write_rows(path: Path, rows: list[dict]) -> None:
    """Per-item scores as CSV (floats to 3 decimals), columns in the first row's order."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: f"{v:.3f}" if isinstance(v, float) else v for k, v in r.items()})


def quiet_libraries() -> None:
    """Library chatter down to warnings, before any of them is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.ERROR)
    # gcsfs logs every retry it gives up on with a traceback; the error it raises is reported
    # in one line (tts_jax.paths.check_bucket, the trainer).
    logging.getLogger("gcsfs").setLevel(logging.CRITICAL)
    logging.getLogger("google.auth").setLevel(logging.ERROR)  # it tries each source in turn
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def quiet_progress_bars() -> None:
    """TensorFlow Datasets' progress bars off, for a verb about to run. Imported here, not at
    the top: TensorFlow takes seconds to import, and the parser (``--help``) never needs it."""
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
