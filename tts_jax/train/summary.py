"""Summaries: TensorBoard event files (tensorboardX, no TensorFlow) and a metrics.jsonl log.

Only process 0 writes. Images are HxWx3 uint8 or float in [0, 1]; audio is mono float [-1, 1].

On a local disk a row is appended to metrics.jsonl as it is logged. An object in a bucket
cannot be appended to, so there the writer keeps the log in memory and writes metrics.jsonl
whole at every :meth:`SummaryWriter.flush` (the trainer flushes with each checkpoint and
evaluation): the log in the bucket always covers the newest checkpoint, and a run killed
between two resumes from that checkpoint and logs the steps after it again. TensorBoard's
event files are written to a local folder and uploaded whole at each flush likewise
(tensorboardX's own writer for gs:// does not work), as ``WORKDIR/tensorboard/events...``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time

import jax
import numpy as np
from tensorboardX import SummaryWriter as TBWriter

from tts_jax.paths import Path, is_remote, run_path, write_whole


class SummaryWriter:
    """``resumed_at``: the step a resumed run restarts from; rows logged past it by the
    interrupted run are dropped, so that every step is in metrics.jsonl once."""

    def __init__(self, workdir, resumed_at: int | None = None):
        workdir = run_path(workdir)
        self.active = jax.process_index() == 0
        self.path = workdir / "metrics.jsonl"
        self.remote = is_remote(workdir)
        self._tb = None
        self._rows: list[dict] = []  # the whole log, in a bucket
        if self.active and self.path.is_file():
            rows = _rows(self.path)
            kept = [r for r in rows if resumed_at is None or r.get("step", 0) <= resumed_at]
            if self.remote:
                self._rows = kept
            elif len(kept) < len(rows):
                write_whole(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        if self.active:
            self._events = workdir / "tensorboard"
            local = tempfile.mkdtemp(prefix="tts_jax_tb_") if self.remote else str(self._events)
            self._tb = TBWriter(local)

    def scalars(self, step: int, values: dict, prefix: str = "train") -> None:
        if not self.active:
            return
        clean = {k: float(v) for k, v in values.items()}
        for k, v in clean.items():
            self._tb.add_scalar(f"{prefix}/{k}", v, step)
        row = {"step": int(step), "split": prefix, "wall_time": time.time(), **clean}
        if self.remote:
            self._rows.append(row)
            return
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
        if self._tb is None:
            return
        self._tb.flush()
        if self.remote:
            write_whole(self.path, "".join(json.dumps(r) + "\n" for r in self._rows))
            local = Path(self._tb.logdir)
            for events in local.iterdir():
                write_whole(self._events / events.name, events.read_bytes())

    def close(self) -> None:
        if self._tb is None:
            return
        self.flush()
        self._tb.close()
        if self.remote:
            shutil.rmtree(self._tb.logdir, ignore_errors=True)
        self._tb = None


def read_metrics(workdir, split: str = "train") -> list[dict]:
    """Rows of ``metrics.jsonl`` for ``split``, in the order written."""
    path = run_path(workdir) / "metrics.jsonl"
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
