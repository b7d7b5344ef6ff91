"""Batches for training and evaluation, deterministic and resumable.

Every batch is a pure function of ``(seed, epoch, index)``: the plan of an epoch (which
utterances go in which batch, in which order) is computed from the corpus index alone, so

* a resumed run sees exactly the batches it would have seen: the iterator position
  ``{"epoch", "index"}`` is saved in the checkpoint and nothing else is needed;
* every host computes the same global plan and reads only its own rows of each global batch
  (``jax.process_index()``), with the same padded shape on every host.

Padded shapes come from a small fixed set of buckets so that ``jit`` compiles a bounded number
of times: :meth:`TextMelBatches.shapes` lists them and the trainer prints how many there are.

Batch layouts (global batch ``B``; this host gets ``B / process_count`` rows):

``TextMelBatches``  (text -> mel models)
    ids           int32 [B, N]      symbol ids ending with EOS, 0-padded
    id_lengths    int32 [B]
    mels          float32 [B, T, M] log-mels, padded with log(log_floor) (silence)
    mel_lengths   int32 [B]
    mel_mask      float32 [B, T]    1 on real frames
    stop_targets  float32 [B, T]    1 from the last real frame on (padding included)
    valid         bool [B]          False on filler rows (only when ``drop_remainder=False``)
    index         int32 [B]         row of the utterance in its split (host side bookkeeping)

    linears       float32 [B, T, F] log linear magnitudes (only with ``linear=True``)

``AudioSegments``  (vocoders)
    audio         float32 [B, S]    random S-sample segments aligned to frame boundaries
    mels          float32 [B, S / hop, M]
    valid, index  as above
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tts_jax.audio import log_linear_np
from tts_jax.data.ljspeech import Split
from tts_jax.errors import UserError
from tts_jax.text import TextConfig, text_to_ids


def geometric_buckets(smallest: int, largest: int, ratio: float, multiple: int) -> list[int]:
    """Boundaries ``smallest, smallest * ratio, ...`` rounded up to ``multiple``, the last one
    ``>= largest``."""
    if smallest < 1 or ratio <= 1:
        raise UserError(f"bucket sizes need smallest >= 1 and ratio > 1, got {smallest}, {ratio}")
    out, b = [], float(smallest)
    while True:
        v = int(math.ceil(b / multiple) * multiple)
        if not out or v > out[-1]:
            out.append(v)
        if v >= largest:
            return out
        b *= ratio


class _Batches:
    """Shared machinery: epoch plans, per-host rows, position state and prefetching."""

    def __init__(
        self,
        split: Split,
        batch_size,
        seed,
        shuffle,
        drop_remainder,
        process_index,
        process_count,
        prefetch,
    ):
        if batch_size % process_count:
            raise UserError(
                f"global batch size {batch_size} is not divisible by the {process_count} hosts"
            )
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.process_index = process_index
        self.local_batch_size = batch_size // process_count
        self.epoch, self.index = 0, 0
        self._prefetch = prefetch
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, prefetch))
        self._pending: dict[tuple[int, int], concurrent.futures.Future] = {}
        self._plans: dict[int, list[np.ndarray]] = {}
        self.members = self._eligible()
        if len(self.members) < (batch_size if drop_remainder else 1):
            raise UserError(
                f"split {split.name!r} has {len(self.members)} usable utterances, fewer than the "
                f"batch size {batch_size}"
            )

    # ---- to be provided by subclasses ----
    def _eligible(self) -> np.ndarray:
        return np.arange(len(self.split))

    def _sort_key(self) -> np.ndarray:
        return self.split.num_frames

    def _make(self, rows: np.ndarray, local: np.ndarray, epoch: int, index: int) -> dict:
        """Arrays for this host's ``local`` rows of the global batch ``rows``."""
        raise NotImplementedError

    # ---- plans ----
    def plan(self, epoch: int) -> list[np.ndarray]:
        """Global batches of the epoch as arrays of split rows (-1 marks filler rows)."""
        plans = self._plans
        if epoch not in plans:
            # Keep this epoch and the one before: prefetching crosses epoch boundaries.
            plans = {e: p for e, p in plans.items() if e == epoch - 1}
            plans[epoch] = self._build_plan(epoch)
            self._plans = plans
        return plans[epoch]

    def _build_plan(self, epoch: int) -> list[np.ndarray]:
        rows = self.members.copy()
        b = self.batch_size
        if not self.shuffle:
            batches = [rows[i : i + b] for i in range(0, len(rows), b)]
        else:
            rng = np.random.default_rng([self.seed, epoch])
            rows = rng.permutation(rows)
            # Sort within windows of 32 batches so a batch holds similar lengths (little
            # padding), then shuffle the batch order.
            key = self._sort_key()
            window = 32 * b
            sorted_rows = np.concatenate(
                [
                    chunk[np.argsort(key[chunk], kind="stable")]
                    for chunk in np.array_split(rows, max(1, math.ceil(len(rows) / window)))
                ]
            )
            batches = [sorted_rows[i : i + b] for i in range(0, len(sorted_rows), b)]
            if len(batches[-1]) < b and self.drop_remainder:
                batches = batches[:-1]
            order = rng.permutation(len(batches))
            batches = [batches[i] for i in order]
        if self.drop_remainder:
            batches = [x for x in batches if len(x) == b]
        return [np.concatenate([x, -np.ones(b - len(x), np.int64)]) for x in batches]

    def __len__(self) -> int:
        return len(self.plan(0))

    # ---- iteration ----
    def batch_at(self, epoch: int, index: int) -> dict:
        """This host's rows of global batch ``index`` of ``epoch`` (pure, used for prefetch)."""
        rows = self.plan(epoch)[index]
        lo = self.process_index * self.local_batch_size
        local = rows[lo : lo + self.local_batch_size]
        batch = self._make(rows, local, epoch, index)
        batch["valid"] = local >= 0
        batch["index"] = local.astype(np.int32)
        return batch

    def _position_after(self, epoch, index):
        index += 1
        if index >= len(self.plan(epoch)):
            return epoch + 1, 0
        return epoch, index

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        pos = (self.epoch, self.index)
        # Keep `prefetch` future batches in flight.
        ahead = pos
        for _ in range(self._prefetch + 1):
            if ahead not in self._pending:
                self._pending[ahead] = self._pool.submit(self.batch_at, *ahead)
            ahead = self._position_after(*ahead)
        batch = self._pending.pop(pos).result()
        self.epoch, self.index = self._position_after(*pos)
        return batch

    def epoch_batches(self, epoch: int = 0) -> Iterator[dict]:
        """All batches of one epoch in order (evaluation / export), without moving the state."""
        for i in range(len(self.plan(epoch))):
            yield self.batch_at(epoch, i)

    def get_state(self) -> dict:
        """Position of the next batch; JSON-serialisable, saved in checkpoints."""
        return {"epoch": int(self.epoch), "index": int(self.index)}

    def set_state(self, state: dict) -> None:
        self._pending.clear()
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


class TextMelBatches(_Batches):
    """Padded (text ids, mel, stop target) batches for text-to-mel training.

    Utterances are padded to bucket ``k``, the smallest whose text *and* frame boundaries hold
    the batch's longest text and mel, so there are at most ``len(frame_buckets)`` shapes.
    Frame boundaries are multiples of ``frames_multiple`` (Tacotron's reduction factor r).
    Training drops utterances longer than ``max_frames`` (the count is in ``dropped``).

    ``mel_dir``: each utterance's target mel is ``mel_dir/ID.npy`` ``[frames, n_mels]``
    instead of the recording's (a teacher's mels, for sequence-level distillation), with its own
    length. ``audio``: batches also hold each waveform, ``audio`` ``[B, frames * hop]``
    (zero-padded; sample n lies in frame n // hop), for models trained on audio too.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        text: TextConfig = TextConfig(),
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        frames_multiple: int = 1,
        max_frames: int | None = None,
        num_buckets: int = 8,
        process_index: int = 0,
        process_count: int = 1,
        prefetch: int = 2,
        log_floor: float = 1e-5,
        linear: bool = False,
        mel_dir: str | Path | None = None,
        audio: bool = False,
    ):
        self.linear, self.audio = linear, audio
        self.mel_dir = _checked_mel_dir(mel_dir, split)
        self.num_frames = split.num_frames
        if self.mel_dir is not None:  # lengths from the files' headers, without reading them
            self.num_frames = np.array(
                [len(np.load(self.mel_dir / f"{i}.npy", mmap_mode="r")) for i in split.ids]
            )
        self.ids = [text_to_ids(t, text) for t in split.texts]
        self.text_lengths = np.array([len(x) for x in self.ids])
        self.frames_multiple = frames_multiple
        self.max_frames = max_frames
        self.pad_value = float(np.log(log_floor))
        self.dropped = 0
        super().__init__(
            split, batch_size, seed, shuffle, drop_remainder, process_index, process_count, prefetch
        )
        m = self.members
        longest_frames = int(self.num_frames[m].max())
        shortest_frames = int(self.num_frames[m].min())
        # Geometric boundaries between the shortest and longest utterance.
        ratio = (longest_frames / max(1, shortest_frames)) ** (1.0 / max(1, num_buckets - 1))
        ratio = max(ratio, 1.05)
        self.frame_buckets = geometric_buckets(
            max(frames_multiple, shortest_frames), longest_frames, ratio, 8 * frames_multiple
        )
        tl = self.text_lengths[m]
        # Text boundaries in step with the frame boundaries (texts and mels grow together).
        scale = tl.max() / self.frame_buckets[-1]
        text_buckets = [int(math.ceil(f * scale / 8) * 8) for f in self.frame_buckets]
        text_buckets[-1] = max(text_buckets[-1], int(math.ceil(tl.max() / 8) * 8))
        self.text_buckets = text_buckets

    def _eligible(self) -> np.ndarray:
        rows = np.arange(len(self.split))
        if self.max_frames is not None and self.drop_remainder:
            keep = self.num_frames <= self.max_frames
            self.dropped = int((~keep).sum())
            rows = rows[keep]
        return rows

    def _bucket(self, rows: np.ndarray) -> tuple[int, int]:
        real = rows[rows >= 0]
        need_t = int(self.text_lengths[real].max())
        need_f = int(self.num_frames[real].max())
        for tb, fb in zip(self.text_buckets, self.frame_buckets, strict=True):
            if tb >= need_t and fb >= need_f:
                return tb, fb
        # Longer than any training utterance (evaluation of held-out data): round up.
        return (
            max(self.text_buckets[-1], -(-need_t // 8) * 8),
            max(
                self.frame_buckets[-1],
                -(-need_f // (8 * self.frames_multiple)) * 8 * self.frames_multiple,
            ),
        )

    def _sort_key(self) -> np.ndarray:
        return self.num_frames

    def shapes(self, epoch: int = 0) -> list[tuple[int, int]]:
        """Distinct padded (text length, frames) shapes of an epoch's batches."""
        return sorted({self._bucket(rows) for rows in self.plan(epoch)})

    def _make(self, rows, local, epoch, index) -> dict:
        n_text, n_frames = self._bucket(rows)
        fill = rows[rows >= 0][0]
        b = len(local)
        n_mels = self.split.mel.n_mels
        out = {
            "ids": np.zeros((b, n_text), np.int32),
            "id_lengths": np.zeros(b, np.int32),
            "mels": np.full((b, n_frames, n_mels), self.pad_value, np.float32),
            "mel_lengths": np.zeros(b, np.int32),
            "mel_mask": np.zeros((b, n_frames), np.float32),
            "stop_targets": np.ones((b, n_frames), np.float32),
        }
        hop = self.split.mel.hop_length
        if self.audio:
            out["audio"] = np.zeros((b, n_frames * hop), np.float32)
        # The recording is read only when its mel or waveform is used.
        read = self.mel_dir is None or self.audio or self.linear
        for j, row in enumerate(local):
            row = fill if row < 0 else row  # filler rows repeat a real one (valid=False)
            ids = self.ids[row]
            example = self.split.example(row) if read else None
            if self.mel_dir is None:
                mel = example["mel"]
            else:
                mel = _external_mel(self.mel_dir, self.split, row, self.num_frames[row], _PLANNED)
            if self.audio:
                wav = example["audio"][: n_frames * hop]
                out["audio"][j, : len(wav)] = wav
            out["ids"][j, : len(ids)] = ids
            out["id_lengths"][j] = len(ids)
            out["mels"][j, : len(mel)] = mel
            out["mel_lengths"][j] = len(mel)
            out["mel_mask"][j, : len(mel)] = 1.0
            out["stop_targets"][j, : len(mel) - 1] = 0.0
            if self.linear:
                lin = log_linear_np(example["audio"], self.split.mel)
                if "linears" not in out:
                    out["linears"] = np.full(
                        (b, n_frames, lin.shape[1]), self.pad_value, np.float32
                    )
                out["linears"][j, : len(lin)] = lin
        return out


_PLANNED = "(as when the batches were planned)"


def _external_mel(mel_dir: Path, split: Split, row: int, frames: int, because: str) -> np.ndarray:
    """``mel_dir/ID.npy`` of utterance ``row``, refused unless it is ``[frames, n_mels]``
    (``because`` ends the message: where ``frames`` comes from)."""
    path = mel_dir / f"{split.ids[row]}.npy"
    mel = np.load(path)
    if mel.shape != (frames, split.mel.n_mels):
        raise UserError(
            f"{path} holds shape {mel.shape}; expected ({frames}, {split.mel.n_mels}) " + because
        )
    return mel.astype(np.float32)


def _checked_mel_dir(mel_dir, split: Split) -> Path | None:
    """``mel_dir`` as a Path, refused unless it holds ``ID.npy`` for every utterance."""
    if mel_dir is None:
        return None
    mel_dir = Path(mel_dir)
    missing = [i for i in split.ids if not (mel_dir / f"{i}.npy").is_file()]
    if missing:
        raise UserError(
            f"mel_dir {mel_dir} lacks {len(missing)} of the {len(split.ids)} mels of split "
            f"{split.name!r} (e.g. {missing[0]}.npy); export them with "
            f"`tts-jax gta --split {split.name}` (or `tts-jax synthesize` for free-running ones)"
        )
    return mel_dir


class AudioSegments(_Batches):
    """Random fixed-length (audio, mel) segments for vocoder training.

    ``segment_length`` samples (a multiple of the hop) starting on a frame boundary, drawn
    afresh each epoch; shorter utterances are zero-padded (their padded mel frames hold the
    log floor). Offsets are a pure function of (seed, epoch, batch index, row).

    ``mel_dir``: read each utterance's mel from ``mel_dir/ID.npy`` instead of the corpus (the
    ground-truth-aligned mels of ``tts-jax gta``, for fine-tuning a vocoder on what Tacotron 2
    predicts); they must have the ground-truth frame count.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        segment_length: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        process_index: int = 0,
        process_count: int = 1,
        prefetch: int = 2,
        log_floor: float = 1e-5,
        mel_dir: str | Path | None = None,
    ):
        hop = split.mel.hop_length
        self.mel_dir = _checked_mel_dir(mel_dir, split)
        if segment_length % hop:
            raise UserError(f"segment_length {segment_length} is not a multiple of hop {hop}")
        self.segment_length = segment_length
        self.pad_value = float(np.log(log_floor))
        super().__init__(
            split, batch_size, seed, shuffle, drop_remainder, process_index, process_count, prefetch
        )

    def _make(self, rows, local, epoch, index) -> dict:
        hop = self.split.mel.hop_length
        seg_frames = self.segment_length // hop
        # Offsets are drawn for the whole global batch, so they do not depend on the host count.
        rng = np.random.default_rng([self.seed, epoch, index])
        u = rng.random(len(rows))
        lo = self.process_index * self.local_batch_size
        b = len(local)
        fill = rows[rows >= 0][0]
        out = {
            "audio": np.zeros((b, self.segment_length), np.float32),
            "mels": np.full((b, seg_frames, self.split.mel.n_mels), self.pad_value, np.float32),
        }
        for j, row in enumerate(local):
            row = fill if row < 0 else row
            ex = self.split.example(row)
            if self.mel_dir is not None:
                ex["mel"] = _external_mel(
                    self.mel_dir,
                    self.split,
                    row,
                    len(ex["mel"]),
                    "(the utterance's ground-truth frames)",
                )
            frames = len(ex["mel"])
            start = int(u[lo + j] * (max(0, frames - seg_frames) + 1)) if self.shuffle else 0
            mel = ex["mel"][start : start + seg_frames]
            wav = ex["audio"][start * hop : start * hop + self.segment_length]
            out["mels"][j, : len(mel)] = mel
            out["audio"][j, : len(wav)] = wav
        return out
