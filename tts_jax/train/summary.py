"""Summaries: TensorBoard event files (tensorboardX, no TensorFlow) and a metrics.jsonl log.

Only process 0 writes. Images are HxWx3 uint8 or float in [0, 1]; audio is mono float [-1, 1].
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import jax
import numpy as np
from tensorboardX import SummaryWriter as TBWriter


class SummaryWriter:
    """``resumed_at``: the step a resumed run restarts from; rows logged past it by the
    interrupted run are dropped, so that every step is in metrics.jsonl once."""

    def __init__(self, workdir: str | Path, resumed_at: int | None = None):
        self.active = jax.process_index() == 0
        self.path = Path(workdir) / "metrics.jsonl"
        self._tb = None
        if self.active and resumed_at is not None and self.path.is_file():
            kept = [r for r in _rows(self.path) if r.get("step", 0) <= resumed_at]
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
            tmp.replace(self.path)
        if self.active:
            self._tb = TBWriter(str(Path(workdir) / "tensorboard"))

    def scalars(self, step: int, values: dict, prefix: str = "train") -> None:
        if not self.active:
            return
        clean = {k: float(v) for k, v in values.items()}
        for k, v in clean.items():
            self._tb.add_scalar(f"{prefix}/{k}", v, step)
        row = {"step": int(step), "split": prefix, "wall_time": time.time(), **clean}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def images(self, step: int, images: dict, prefix: str = "eval") -> None:
        if not self.active:
            return
        for k, img in images.items():
            self._tb.add_image(f"{prefix}/{k}", np.asarray(img), step, dataformats="HWC")

    def audio(self, step: int, clips: dict, sample_rate: int, prefix: str = "eval") -> None:
        if not self.active:
            return
        for k, wav in clips.items():
            wav = np.clip(np.asarray(wav, np.float32), -1, 1)
            self._tb.add_audio(f"{prefix}/{k}", wav, step, sample_rate=sample_rate)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str | Path, split: str = "train") -> list[dict]:
    """Rows of ``metrics.jsonl`` for ``split``, in the order written."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [r for r in _rows(path) if r.get("split") == split]


def _rows(path: Path) -> list[dict]:
    """Every row of a metrics.jsonl; a torn line (a kill mid-write) is skipped with a warning."""
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            logging.getLogger(__name__).warning("%s line %d is torn; skipped", path, i + 1)
    return rows
