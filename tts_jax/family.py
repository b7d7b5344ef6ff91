"""The contract a model family keeps with the rest of the package, over a model's whole life.

A family is a module (or package) ``tts_jax.models.NAME`` exposing ``FAMILY = Family(...)``;
a config selects it with ``config.model.family = "NAME"``. The trainer calls its data, state,
step and summary functions; ``tts-jax synthesize``, ``vocode``, ``separate``,
``transcribe``, ``evaluate``, ``export`` and ``gta`` call its after-training entries. The
command line never branches on a family's name: a family offers a role by filling its entry,
and a command asks for the role.

Every after-training entry takes ``path``, a training workdir or an exported model
(:mod:`tts_jax.workdir` reads both).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from tts_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class EvalRequest:
    """What ``tts-jax evaluate --workdir`` asks of a family's ``evaluate``."""

    split: str = "test"  # the corpus split to score
    limit: int = 50  # at most this many utterances
    # mel [frames, n_mels] -> wav: turns a family's mels into audio (families that output mels)
    vocoder: Callable[[np.ndarray], np.ndarray] | None = None
    vocoder_name: str = "griffin-lim"
    sentences: tuple[str, ...] | None = None  # text-to-speech: these instead of the split's
    step: int | None = None  # a checkpoint other than the newest
    # A family that makes its own waveform (text_to_wave) scores it rather than the vocoded
    # mel: ``evaluate`` without ``--vocoder``.
    own_waveform: bool = False


@dataclasses.dataclass
class Evaluation:
    """A family's answer to an :class:`EvalRequest`.

    ``pairs``: ``(id, reference wav, produced wav)`` for the shared audio metrics
    (:func:`tts_jax.eval.evaluate.evaluate_pairs`), or None when the family scores itself.
    ``rows``: per-item scores the family computed (written as CSV). ``stats``: its own summary
    (e.g. attention diagnostics), recorded in the report. ``step``: the checkpoint's step.
    ``texts``: pair id -> the text the produced audio speaks (text-to-speech families), what
    a recognizer's transcript is scored against (CER/WER).
    """

    title: str
    step: int
    pairs: Iterable[tuple] | None = None
    rows: list[dict] = dataclasses.field(default_factory=list)
    stats: dict = dataclasses.field(default_factory=dict)
    texts: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Stacking:
    """What lets a family's runs that differ only in numbers train as one program, stacked on a
    leading run axis (:mod:`tts_jax.train.stacked`). Runs of any family may differ in ``seed``;
    this adds the learning rate and the family's loss weights.

    ``optimizer``: ``(config, learning_rate) -> optax transformation``, the one ``init_state``
    builds, at a rate that may be an array (the stack injects each run's rate as optimiser
    state). ``model_fields``: the ``config.model`` fields that ``hparams`` turns into numbers;
    ``hparams``: ``(config) -> {name: array}``, the run's numbers; ``train_step``: ``(the
    stack's configs) -> pure (state, batch, hparams) -> (state, metrics)``, one run's step, which
    at ``hparams(config)`` is ``train_step(config)``."""

    optimizer: Callable[[Any, Any], Any] | None = None
    model_fields: tuple[str, ...] = ()
    hparams: Callable[[Any], dict] | None = None
    train_step: Callable[[list], Callable] | None = None


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    # --- training (all pure but make_data, which opens the corpus, and eval_summaries) ---
    # (config, process_index, process_count) -> tts_jax.data.Data
    make_data: Callable[[Any, int, int], Any]
    # (config, rng, example_batch) -> state (a pytree with a `step` field)
    init_state: Callable[[Any, Any, dict], Any]
    # (config) -> a batch of the shapes init_state needs (no data read): restoring a
    # checkpoint builds its target state from it
    example_batch: Callable[[Any], dict]
    # (config) -> pure (state, batch) -> (state, metrics)
    train_step: Callable[[Any], Callable]
    # (config) -> pure (state, batch) -> metrics (per-batch means; weight by "weight" if given)
    eval_step: Callable[[Any], Callable] | None = None
    # (config, state, batch) -> {"images": {name: HxWx3}, "audio": {name: wav}}
    eval_summaries: Callable[[Any, Any, dict], dict] | None = None
    # (config) -> {part: number of trained parameters}, from shapes alone (`tts-jax configs`)
    param_count: Callable[[Any], dict[str, int]] | None = None
    # how runs differing in numbers (learning rate, loss weights) stack into one program;
    # without it, runs stack only when they differ in nothing but their seed
    stacking: Stacking | None = None
    # --- after training: path -> a loaded, jitted model in one of five roles ---
    # texts -> [{"mel", "alignment", "stopped"}, plus "audio" when the model makes its own
    # waveform (text_to_wave)]; has .config, .step, .text, .shapes, .max_steps
    synthesizer: Callable[[Any], Any] | None = None
    # mel [frames, n_mels] -> wav [frames * hop]; has .config, .step, .mel (its MelConfig)
    vocoder: Callable[[Any], Any] | None = None
    # mixture [T] -> sources [C, T]; has .config, .step, .sample_rate
    separator: Callable[[Any], Any] | None = None
    # mel [frames, n_mels] -> (reconstructed mel, code counts); has .config, .step
    autoencoder: Callable[[Any], Any] | None = None
    # wav [T] at .sample_rate -> normalised transcript (tts_jax.text.transcripts); has
    # .config, .step, .sample_rate, .transcribe(list of wavs) -> list of texts
    recognizer: Callable[[Any], Any] | None = None
    # (path, EvalRequest) -> Evaluation: how the trained model is scored on held-out data
    evaluate: Callable[[Any, EvalRequest], Evaluation] | None = None
    # (path, out_dir, dtype) -> model.json's content: a small exported model (tts_jax.exported)
    export: Callable[[Any, Any, str], dict] | None = None
    # (path, out_dir, split, batch_size) -> index: ground-truth-aligned features for a vocoder
    gta: Callable[[Any, Any, str, int, bool], dict] | None = None
    # (reference checkpoint files, reference config file or None, out) -> summary: a published
    # PyTorch checkpoint of the paper's reference code as a training workdir (`tts-jax import`)
    import_checkpoint: Callable[[list, Any, Any], dict] | None = None

    def require(self, entry: str, what: str) -> Callable:
        """This family's ``entry`` (a role, ``evaluate``, ``export``, ...), or a UserError
        naming the family, the entry and the families that fill it (``what``: the command or
        input asking, which starts the message)."""
        fn = getattr(self, entry)
        if fn is None:
            raise UserError(
                f"{what}: a {self.name!r} model has no {entry} (Family.{entry}); the families "
                f"that have one: {', '.join(families_with(entry)) or 'none'}"
            )
        return fn


ROLES = ("synthesizer", "vocoder", "separator", "autoencoder", "recognizer")
TRAINING = (
    "make_data",
    "init_state",
    "example_batch",
    "train_step",
    "eval_step",
    "eval_summaries",
    "param_count",
    "stacking",
)


def assemble(name: str, training, **after_training) -> Family:
    """The Family ``name`` whose training entries are ``training``'s functions of the same
    names (a family's ``train`` module) and whose after-training entries are given."""
    found = {k: getattr(training, k) for k in TRAINING if hasattr(training, k)}
    return Family(name=name, **found, **after_training)


def count_params(init: Callable[[], Any], leave_out: tuple[str, ...] = ()) -> int:
    """Parameters in ``init()["params"]`` (a flax ``Module.init`` call) but its top-level
    submodules named in ``leave_out``, from shapes alone: ``init`` is traced with
    :func:`jax.eval_shape`, so nothing is computed or allocated."""
    shapes = jax.eval_shape(init)["params"]
    kept = {k: v for k, v in shapes.items() if k not in leave_out}
    return int(sum(np.prod(x.shape, dtype=np.int64) for x in jax.tree.leaves(kept)))


def family_names() -> list[str]:
    """Every family under ``tts_jax.models``, by name."""
    models = importlib.import_module("tts_jax.models")
    return sorted(m.name for m in pkgutil.iter_modules(models.__path__))


def get_family(name: str) -> Family:
    if not name:
        raise UserError("config.model.family is empty; set it to a model family, e.g. 'frame_lm'")
    try:
        module = importlib.import_module(f"tts_jax.models.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"tts_jax.models.{name}":
            raise UserError(
                f"unknown model family {name!r} (no module tts_jax.models.{name}; the families "
                f"are {', '.join(family_names())})"
            ) from None
        raise
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, Family):
        raise UserError(f"tts_jax.models.{name} defines no FAMILY")
    return family


def families_with(entry: str) -> list[str]:
    """The families whose ``entry`` (a role, ``evaluate``, ``export``, ...) is filled."""
    return [n for n in family_names() if getattr(get_family(n), entry) is not None]
