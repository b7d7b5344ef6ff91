"""Corpora, TFDS and batching."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator


@dataclasses.dataclass(frozen=True)
class Data:
    """What a family's ``make_data`` gives the trainer. ``train``: an endless, checkpointable
    iterator of host-local numpy batches (with ``get_state``/``set_state``). ``eval``: a
    zero-argument callable returning a fresh iterator over the validation batches.
    ``describe``: lines the trainer prints at start-up."""

    train: Iterator[dict]
    eval: Callable[[], Iterator[dict]] | None
    describe: tuple[str, ...] = ()
