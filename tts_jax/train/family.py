"""What a model family plugs into the shared trainer.

A family is a module ``tts_jax.models.NAME`` exposing ``FAMILY = Family(...)``; a config
selects it with ``config.model.family = "NAME"``. All functions are pure except ``make_data``
(which opens the corpus) and ``eval_summaries`` (host-side rendering).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator
from typing import Any

from tts_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Data:
    """``train``: an endless, checkpointable iterator of host-local numpy batches (with
    ``get_state``/``set_state``). ``eval``: a zero-argument callable returning a fresh iterator
    over the validation batches. ``describe``: lines the trainer prints at start-up."""

    train: Iterator[dict]
    eval: Callable[[], Iterator[dict]] | None
    describe: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    # (config, process_index, process_count) -> Data
    make_data: Callable[[Any, int, int], Data]
    # (config, rng, example_batch) -> state (a pytree with a `step` field)
    init_state: Callable[[Any, Any, dict], Any]
    # (config) -> pure (state, batch) -> (state, metrics)
    train_step: Callable[[Any], Callable]
    # (config) -> pure (state, batch) -> metrics (per-batch means; weight by "weight" if given)
    eval_step: Callable[[Any], Callable] | None = None
    # (config, state, batch) -> {"images": {name: HxWx3}, "audio": {name: wav}}
    eval_summaries: Callable[[Any, Any, dict], dict] | None = None
    # (config, argparse args of `tts-jax synthesize`) -> None; text-to-speech families only
    synthesize: Callable[[Any, Any], None] | None = None
    # (config) -> {part: number of trained parameters}, from shapes alone (`tts-jax configs`)
    param_count: Callable[[Any], dict[str, int]] | None = None


def count_params(init: Callable[[], Any], leave_out: tuple[str, ...] = ()) -> int:
    """Parameters in ``init()["params"]`` (a flax ``Module.init`` call) but its top-level
    submodules named in ``leave_out``, from shapes alone: ``init`` is traced with
    :func:`jax.eval_shape`, so nothing is computed or allocated."""
    import jax
    import numpy as np

    shapes = jax.eval_shape(init)["params"]
    kept = {k: v for k, v in shapes.items() if k not in leave_out}
    return int(sum(np.prod(x.shape, dtype=np.int64) for x in jax.tree.leaves(kept)))


def get_family(name: str) -> Family:
    if not name:
        raise UserError("config.model.family is empty; set it to a model family, e.g. 'frame_lm'")
    try:
        module = importlib.import_module(f"tts_jax.models.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"tts_jax.models.{name}":
            raise UserError(
                f"unknown model family {name!r} (no module tts_jax.models.{name})"
            ) from None
        raise
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, Family):
        raise UserError(f"tts_jax.models.{name} defines no FAMILY")
    return family
