"""Defaults every training config starts from (ml_collections ConfigDicts, configs as data).

An experiment file ``experiments/NAME.py`` defines ``get_config(variant)`` returning
``base_config()`` with its model section and overrides. A run is::

    tts-jax train --config experiments/NAME.py:VARIANT --workdir DIR [--config.a.b=value ...]
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
from pathlib import Path

from absl import flags
from ml_collections import ConfigDict, config_dict, config_flags

from tts_jax.errors import UserError
from tts_jax.paths import resolve_config_paths


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of a family's model settings: a frozen dataclass whose defaults are the paper's,
    the one place they are written. Its ``config.model`` section (:meth:`section`) holds every
    field, so each is a ``--config.model.NAME=`` override; an experiment file changes only what
    differs. :meth:`from_config` reads a section back, a saved one included."""

    @classmethod
    def section(cls, family: str) -> ConfigDict:
        """``config.model`` of an experiment file: ``family`` and every field's default."""
        return ConfigDict({"family": family, **dataclasses.asdict(cls())})

    @classmethod
    def from_config(cls, model: ConfigDict):
        """The settings of a ``config.model`` section. A field the section lacks takes its
        default (a config saved before the field existed); a key no field has is refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in model.items() if k != "family"}
        unknown = sorted(set(given) - known)
        if unknown:
            raise UserError(
                f"config.model has fields {cls.__name__} does not know: {', '.join(unknown)} "
                f"(it knows {', '.join(sorted(known))})"
            )
        return cls(**{k: frozen(v) for k, v in given.items()})


def frozen(value):
    """Lists (a config read back from JSON) as tuples, nested ones too: hashable, as flax
    module fields must be."""
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


def check_variant(variant: str, intended_use: dict[str, str]) -> None:
    """A config file's ``get_config(variant)`` accepts the keys of its ``INTENDED_USE``."""
    if variant not in intended_use:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(intended_use)}")


def data_seed(config) -> int:
    """The seed of ``config``'s training data order: ``data.seed``, else the run's seed."""
    seed = config.data.get("seed")
    return config.seed if seed is None else seed


def base_config() -> ConfigDict:
    c = ConfigDict()
    c.seed = 0

    c.data = ConfigDict()
    # An LJSpeech-format folder (the embedded corpus or LJSpeech-1.1), or "tfds:ljspeech".
    c.data.path = "runs/corpus"
    c.data.tfds_data_dir = config_dict.placeholder(str)  # default: DATA_PATH/tfds
    c.data.split_fractions = (0.95, 0.025, 0.025)  # train / validation / test by id hash
    c.data.sample_rate = 22050
    c.data.n_fft = 1024
    c.data.hop_length = 256
    c.data.win_length = 1024
    c.data.n_mels = 80
    c.data.fmin = 0.0
    c.data.fmax = 8000.0
    # "centered" (REFERENCE, librosa), "jik876" or "nvidia" (those references' mels, for their
    # imported models): tts_jax.audio.FRAMINGS
    c.data.framing = "centered"
    # Text-to-mel training targets read from ID.npy files ([frames, n_mels]) instead of the
    # recordings' mels: a teacher's GTA or free-running outputs (experiments/tacotron2_distill.py).
    c.data.mel_dir = config_dict.placeholder(str)
    c.data.num_buckets = 8  # padded shapes (= jit compilations) for text-to-mel batches
    c.data.max_frames = 1000  # longer training utterances are skipped
    c.data.prefetch = 2
    # The seed of the training data's order; unset: the run's seed. Runs of a stack
    # (tts_jax/train/stacked.py) see the same batches, so seeds stack only with this set.
    c.data.seed = config_dict.placeholder(int)
    c.data.text = ConfigDict(
        {"frontend": "chars", "cleaners": "english", "unknown": "error", "voice": "en-us"}
    )

    c.train = ConfigDict()
    c.train.num_steps = 1000
    c.train.batch_size = 16  # global, split over every device of every host
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 3
    c.train.log_every = 10
    c.train.eval_every = 500
    c.train.eval_batches = 4  # 0: the whole validation split
    c.train.progress = True
    c.train.max_minutes = 0.0  # > 0: checkpoint and stop after this much wall time
    # Non-finite loss or gradient: the update is skipped (counted as "skipped"); this many in
    # a row stop the run with an error, nothing non-finite saved.
    c.train.max_skipped_steps = 20
    # "bfloat16": mixed precision, bf16 compute over float32 parameters and optimiser state
    # (tts_jax/train/precision.py); evaluation and inference stay float32.
    c.train.compute_dtype = "float32"

    c.optim = ConfigDict()
    c.optim.name = "adam"  # adam | adamw
    c.optim.learning_rate = 1e-3
    # constant | exponential (see tts_jax.train.optim.make_schedule)
    c.optim.schedule = "constant"
    c.optim.decay_begin = 0
    c.optim.decay_steps = 1
    c.optim.decay_rate = 1.0
    c.optim.staircase = False
    c.optim.final_learning_rate = 0.0
    c.optim.warmup_steps = 0  # > 0: linear warmup from 0 before the schedule
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0
    c.optim.grad_clip_norm = 0.0  # 0 disables clipping

    c.model = ConfigDict()
    c.model.family = ""
    return c


def schedule(
    c: ConfigDict,
    *,
    num_steps: int,
    checkpoint_every: int,
    eval_every: int | None = None,
    log_every: int | None = None,
    eval_batches: int | None = None,
    batch_size: int | None = None,
) -> None:
    """``c.train``'s schedule: ``num_steps`` steps, a checkpoint every ``checkpoint_every``,
    an evaluation every ``eval_every`` (default: at each checkpoint) of ``eval_batches``
    batches, a log line every ``log_every``. A field given as None keeps its value."""
    given = {
        "batch_size": batch_size,
        "num_steps": num_steps,
        "checkpoint_every": checkpoint_every,
        "eval_every": checkpoint_every if eval_every is None else eval_every,
        "log_every": log_every,
        "eval_batches": eval_batches,
    }
    c.train.update({k: v for k, v in given.items() if v is not None})


def cpu_schedule(
    c: ConfigDict,
    num_steps: int,
    *,
    eval_batches: int,
    batch_size: int | None = None,
    every: int = 250,
    eval_every: int | None = None,
    log_every: int = 25,
) -> None:
    """The ``:cpu`` variants' schedule on 2 CPU cores: a checkpoint and an evaluation every
    ``every`` steps (250), a log line every ``log_every`` (25)."""
    schedule(
        c,
        num_steps=num_steps,
        checkpoint_every=every,
        eval_every=eval_every,
        log_every=log_every,
        eval_batches=eval_batches,
        batch_size=batch_size,
    )


def tiny_schedule(
    c: ConfigDict,
    batch_size: int,
    num_steps: int = 4,
    *,
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
) -> None:
    """The tests' ``:tiny`` schedule: ``num_steps`` steps of ``batch_size``, a checkpoint
    halfway (or every ``checkpoint_every``), one batch evaluated at the end (or every
    ``eval_every``), every step logged, no progress bar."""
    schedule(
        c,
        num_steps=num_steps,
        checkpoint_every=checkpoint_every or num_steps // 2,
        eval_every=eval_every or num_steps,
        log_every=1,
        eval_batches=1,
        batch_size=batch_size,
    )
    c.train.progress = False


PROJECT = Path(__file__).resolve().parents[1]  # the clone tts-jax is installed from


def _experiment_files(marker: str) -> list[Path]:
    """The files of ``experiments/`` (in the project folder) whose text holds ``marker``."""
    paths = sorted((PROJECT / "experiments").glob("*.py"))
    return [p for p in paths if marker in p.read_text(encoding="utf-8")]


def _run_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"_tts_jax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_catalog() -> list[dict]:
    """Every variant of every experiment config (``experiments/*.py`` with an INTENDED_USE
    table, read from the project folder): spec, whether it is the file's default, its use."""
    rows = []
    for path in _experiment_files("INTENDED_USE = {"):  # the others are scripts
        module = _run_file(path)
        default = inspect.signature(module.get_config).parameters["variant"].default
        for variant, use in module.INTENDED_USE.items():
            rows.append(
                {
                    "spec": f"experiments/{path.name}:{variant}",
                    "default": variant == default,
                    "use": use,
                }
            )
    return rows


def sweep_files() -> list[str]:
    """The experiment files ``tts-jax sweep`` runs (those defining ``get_sweep``), as
    ``experiments/NAME.py``."""
    return [f"experiments/{p.name}" for p in _experiment_files("def get_sweep(")]


def resolve_config_path(spec: str) -> str:
    """``FILE.py[:VARIANT]`` with FILE found relative to the current directory, else to the
    project folder (so ``experiments/NAME.py`` works from anywhere with an editable install)."""
    path, sep, variant = spec.partition(":")
    for candidate in (Path(path), PROJECT / path):
        if candidate.is_file():
            return f"{candidate}{sep}{variant}"
    raise UserError(
        f"config file not found: {path} (looked in {Path.cwd()} and {PROJECT}; expected "
        "experiments/NAME.py[:VARIANT])"
    )


def _explain_override(spec: str, override: str) -> str | None:
    """Why ``--config.a.b=VALUE`` does not fit the config, in words (or None)."""
    key, _, value = override[len("--config.") :].partition("=")
    try:
        base = load_config(spec)
    except UserError:
        return None
    node = base
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            return None  # ml_collections already names the nearest keys
        node = node[part]
    expected = type(node).__name__
    if expected in ("int", "float", "bool", "str"):
        return f"--config.{key} expects type {expected} (it is {node!r}), got {value!r}"
    return None


def load_config(spec: str, overrides: list[str] = ()):
    """``FILE.py[:VARIANT]`` plus ``--config.a.b=value`` overrides -> a locked ConfigDict.

    Uses ml_collections' own config-file flag, so overrides are type-checked against the
    config's fields. Path fields (:func:`tts_jax.paths.resolve_config_paths`) come back
    absolute, resolved against the current directory.
    """
    spec = resolve_config_path(spec)
    path = spec.split(":", 1)[0]
    argv = ["tts-jax", f"--config={spec}", *overrides]
    fv = flags.FlagValues()
    try:
        # sys_argv: the flag looks for its overrides there (by default in sys.argv).
        config_flags.DEFINE_config_file(
            "config", None, "experiment config", flag_values=fv, sys_argv=argv
        )
        fv(argv)
        config = fv.config
    except (flags.Error, ValueError, KeyError, AttributeError, TypeError) as e:
        reason = _plain_message(e)
        if "invalid literal" in reason or "could not convert" in reason:  # a value of bad type
            for o in overrides:
                if o.partition("=")[0] + "=" in reason:  # the override absl names
                    reason = _explain_override(spec, o) or reason
        raise UserError(f"bad config or override ({spec}): {reason}") from None
    except (SyntaxError, NameError, ImportError) as e:
        syntax = isinstance(e, SyntaxError)
        where = f" line {e.lineno}" if syntax and e.lineno else ""
        reason = e.msg if syntax else str(e)
        raise UserError(
            f"config file {path}{where} cannot be run: {type(e).__name__}: {reason}"
        ) from None
    resolve_config_paths(config)
    return config


def _plain_message(e: Exception) -> str:
    """The useful words of an absl / ml_collections error (which may embed a traceback or the
    repr of a KeyError) on one line."""
    text = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        try:
            text = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        lines = lines[-1:]
    return " ".join(lines)
