"""Two-speaker mixtures from a multi-voice espeak corpus (a small wsj0-2mix of our own).

``build_mixtures(corpus, out)`` pairs utterances spoken by *different* voices within each
split (the corpus's own train / validation / test assignment, so no sentence crosses
splits), resamples to ``sample_rate`` (8 kHz as wsj0-2mix, or 16 kHz), scales the two sources
to a random relative level in ``gain_db`` (the first at +g/2 dB, the second at -g/2 dB
around their own RMS), truncates to the shorter ("min" mode) and writes

    OUT/SPLIT/mix/ID.wav, OUT/SPLIT/s1/ID.wav, OUT/SPLIT/s2/ID.wav, OUT/SPLIT/index.csv,
    OUT/mixtures.json (sample rate, counts)

with the sources exactly as summed (``mix = s1 + s2``, peak-normalised together to 0.9 when
the sum would clip). Deterministic for a seed.

:class:`MixtureSegments` batches random fixed-length segments for training (``{"mixture":
[B, T], "sources": [B, C, T]}``), with the trainer's checkpointable position.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tts_jax import audio
from tts_jax.data.ljspeech import DEFAULT_FRACTIONS, corpus_splits, read_speakers
from tts_jax.errors import UserError


def _voices(corpus: Path) -> dict[str, str]:
    if not (corpus / "speakers.csv").is_file():
        raise UserError(f"{corpus} has no speakers.csv: build it with `tts-jax corpus --voice`")
    return read_speakers(corpus)


def split_index(root, split: str) -> Path:
    """``ROOT/SPLIT/index.csv`` of a folder of mixtures, or a UserError naming the splits it
    has."""
    index = Path(root) / split / "index.csv"
    if not index.is_file():
        have = sorted(p.parent.name for p in Path(root).glob("*/index.csv"))
        raise UserError(
            f"{root} has no mixtures of split {split!r}; its splits: {', '.join(have) or 'none'}"
        )
    return index


def voice_pairs(root, split: str) -> dict[str, str]:
    """Mixture id -> "voice1 / voice2" (sorted) for a split, read from the source corpus's
    speakers.csv; empty when that corpus is no longer where the mixtures were built from."""
    meta = json.loads((Path(root) / "mixtures.json").read_text())
    corpus = Path(meta.get("corpus", ""))
    if not (corpus / "speakers.csv").is_file():
        return {}
    voices = _voices(corpus)
    with open(split_index(root, split)) as f:
        return {
            r["id"]: " / ".join(sorted((voices[r["s1"]], voices[r["s2"]])))
            for r in csv.DictReader(f)
        }


def build_mixtures(
    corpus,
    out,
    *,
    sample_rate: int = 8000,
    mixtures_per_utterance: int = 1,
    gain_db: tuple[float, float] = (-5.0, 5.0),
    seed: int = 0,
    fractions=DEFAULT_FRACTIONS,
) -> dict[str, int]:
    """Writes the mixtures; returns the number per split."""
    corpus, out = Path(corpus), Path(out)
    voices = _voices(corpus)
    if len(set(voices.values())) < 2:
        raise UserError(
            f"{corpus} is spoken by one voice ({sorted(set(voices.values()))}); mixtures need "
            "two: `tts-jax corpus --voice en-us,en-us+f2 ...`"
        )
    splits = corpus_splits(corpus, sorted(voices), fractions)  # pinned ones too (--extend)
    rng = np.random.default_rng(seed)
    counts = {}
    for split in ("train", "validation", "test"):
        ids = sorted(i for i in voices if splits[i] == split)
        pairs = []
        for _ in range(mixtures_per_utterance):
            for a in ids:
                others = [b for b in ids if voices[b] != voices[a]]
                if others:
                    pairs.append((a, others[rng.integers(len(others))], rng.uniform(*gain_db)))
        if not pairs:
            continue
        for sub in ("mix", "s1", "s2"):
            (out / split / sub).mkdir(parents=True, exist_ok=True)
        with open(out / split / "index.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "s1", "s2", "gain_db", "samples"])
            for k, (a, b, g) in enumerate(pairs):
                s1 = audio.load_wav(corpus / "wavs" / f"{a}.wav", sample_rate)
                s2 = audio.load_wav(corpus / "wavs" / f"{b}.wav", sample_rate)
                n = min(len(s1), len(s2))
                s1, s2 = _at_level(s1[:n], g / 2), _at_level(s2[:n], -g / 2)
                peak = np.max(np.abs(s1 + s2))
                if peak > 0.9:
                    s1, s2 = s1 * 0.9 / peak, s2 * 0.9 / peak
                mix_id = f"{split[:2]}{k:05d}"
                audio.save_wav(out / split / "mix" / f"{mix_id}.wav", s1 + s2, sample_rate)
                audio.save_wav(out / split / "s1" / f"{mix_id}.wav", s1, sample_rate)
                audio.save_wav(out / split / "s2" / f"{mix_id}.wav", s2, sample_rate)
                w.writerow([mix_id, a, b, f"{g:.3f}", n])
        counts[split] = len(pairs)
    meta = {"sample_rate": sample_rate, "corpus": str(corpus), "seed": seed, "counts": counts}
    (out / "mixtures.json").write_text(json.dumps(meta, indent=1))
    return counts


def _at_level(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled to RMS 0.1 x 10^(db / 20)."""
    rms = np.sqrt(np.mean(np.square(x))) + 1e-8
    return (x / rms * 0.1 * 10 ** (db / 20)).astype(np.float32)


def sample_rate_of(root) -> int:
    meta = Path(root) / "mixtures.json"
    if not meta.is_file():
        raise UserError(f"{root} holds no mixtures: build them with `tts-jax mixtures`")
    return int(json.loads(meta.read_text())["sample_rate"])


def load_split(root, split: str) -> list[dict]:
    """Every mixture of a split in memory: ``[{"id", "mixture" [T], "sources" [2, T]}]``."""
    sr = sample_rate_of(root)
    d = Path(root) / split
    with open(split_index(root, split)) as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        mix = audio.load_wav(d / "mix" / f"{r['id']}.wav", sr)
        s = [audio.load_wav(d / f"s{j}" / f"{r['id']}.wav", sr) for j in (1, 2)]
        out.append({"id": r["id"], "mixture": mix, "sources": np.stack(s)})
    return out


class MixtureSegments:
    """Endless batches of random ``segment``-sample windows of a split's mixtures (shorter
    ones zero-padded); a batch is a pure function of (seed, epoch, index), so the position
    ``{"epoch", "index"}`` is all a checkpoint needs."""

    def __init__(
        self,
        items: list[dict],
        batch_size: int,
        segment: int,
        seed: int = 0,
        shuffle: bool = True,
        process_index: int = 0,
        process_count: int = 1,
    ):
        if len(items) < batch_size:
            raise UserError(f"{len(items)} mixtures, fewer than the batch size {batch_size}")
        if batch_size % process_count:
            raise UserError(f"batch size {batch_size} is not divisible by {process_count} hosts")
        self.items, self.batch_size, self.segment, self.seed = items, batch_size, segment, seed
        self.shuffle = shuffle
        self.local = slice(
            process_index * batch_size // process_count,
            (process_index + 1) * batch_size // process_count,
        )
        self.epoch, self.index = 0, 0

    def __len__(self) -> int:
        return len(self.items) // self.batch_size

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self.index >= len(self):
            self.epoch, self.index = self.epoch + 1, 0
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.items))
            offsets = np.random.default_rng([self.seed, self.epoch, self.index]).random(
                self.batch_size
            )
        else:  # evaluation: in order, from the start of each mixture
            order, offsets = np.arange(len(self.items)), np.zeros(self.batch_size)
        rows = order[self.index * self.batch_size : (self.index + 1) * self.batch_size]
        self.index += 1
        return self._batch(rows[self.local], offsets[self.local])

    def epoch_batches(self):
        """One pass (evaluation), from a fresh position."""
        self.set_state({"epoch": 0, "index": 0})
        for _ in range(len(self)):
            yield next(self)

    def _batch(self, rows, offsets) -> dict:
        seg = self.segment
        mix = np.zeros((len(rows), seg), np.float32)
        src = np.zeros((len(rows), 2, seg), np.float32)
        for j, (row, u) in enumerate(zip(rows, offsets, strict=True)):
            item = self.items[row]
            n = len(item["mixture"])
            start = int(u * max(0, n - seg + 1))
            piece = item["mixture"][start : start + seg]
            mix[j, : len(piece)] = piece
            src[j, :, : len(piece)] = item["sources"][:, start : start + seg]
        return {"mixture": mix, "sources": src}

    def get_state(self) -> dict:
        return {"epoch": int(self.epoch), "index": int(self.index)}

    def set_state(self, state: dict) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
