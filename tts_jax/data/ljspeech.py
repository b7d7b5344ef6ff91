"""TFDS for LJSpeech-format corpora, and a uniform random-access reader over the result.

``prepare(corpus_dir)`` builds an array_record TFDS dataset from any folder in LJSpeech layout
(the embedded espeak corpus, or a real LJSpeech-1.1 download) with the splits, the int16 audio
at the configured rate and its precomputed log-mel. TensorFlow is not needed: records are
written as array_record and read back with ``tfds.data_source``.

``open_corpus(path)`` returns a :class:`Corpus` whose splits give random access to examples
plus an in-memory index (ids, normalised texts, frame counts) used for batching. ``path`` is
either a corpus folder (prepared on first use) or ``tfds:ljspeech`` for TFDS's own ``ljspeech``
dataset, built beforehand with ``tfds build ljspeech`` (see docs/data.md, "Real LJSpeech").
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from tts_jax import audio
from tts_jax.errors import UserError

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.95, 0.025, 0.025)
_INDEX_FILE = "tts_jax_index.json"
SPLITS_FILE = "splits.csv"  # optional id|split lines that pin a corpus's splits
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Corpus folder
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Utterance:
    id: str
    text: str
    normalized_text: str


def read_metadata(corpus_dir: str | Path) -> list[Utterance]:
    """Parses ``metadata.csv`` (``id|text|normalized_text``) and checks every wav exists."""
    root = Path(corpus_dir)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise UserError(
            f"{root} is not an LJSpeech-format corpus: {meta} is missing "
            "(expected lines 'id|text|normalized_text' and wavs/ID.wav)"
        )
    rows = []
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = meta.read_bytes()[: e.start].count(b"\n") + 1
        raise UserError(
            f"{meta}:{line}: not UTF-8 text (byte {e.object[e.start]:#x}); save the file as UTF-8"
        ) from None
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        parts = line.split("|")
        if len(parts) == 2:  # some corpora ship only id|text
            parts.append(parts[1])
        if len(parts) != 3 or not parts[0]:
            raise UserError(f"{meta}:{n}: expected 'id|text|normalized_text', got {line!r}")
        rows.append(Utterance(*parts))
    if not rows:
        raise UserError(f"{meta} has no utterances")
    missing = [r.id for r in rows if not (root / "wavs" / f"{r.id}.wav").is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} wav file(s) listed in {meta} are missing from {root / 'wavs'}, "
            f"e.g. {missing[:3]}"
        )
    return rows


def read_speakers(corpus_dir: str | Path) -> dict[str, str]:
    """``speakers.csv`` (``id|voice``, written by ``tts-jax corpus``) as id -> voice; empty
    when the corpus has none (LJSpeech has one speaker and no such file)."""
    path = Path(corpus_dir) / "speakers.csv"
    if not path.is_file():
        return {}
    rows = [line.split("|") for line in path.read_text(encoding="utf-8").splitlines()]
    return {r[0]: r[1] for r in rows if r[0].strip()}


def assign_splits(ids: list[str], fractions=DEFAULT_FRACTIONS) -> dict[str, str]:
    """Deterministic train / validation / test assignment of utterance ids.

    Ids are ordered by a hash of the id; the first ``max(1, round(f_val * N))`` go to
    validation, the next ``max(1, round(f_test * N))`` to test (each only when its fraction is
    positive), the rest to train. Depends only on the set of ids, not on their order, and
    gives every requested split at least one utterance even for a tiny corpus.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise UserError(f"split fractions must be 3 non-negative numbers summing to 1: {fractions}")
    n = len(ids)
    n_val = max(1, round(fractions[1] * n)) if fractions[1] > 0 else 0
    n_test = max(1, round(fractions[2] * n)) if fractions[2] > 0 else 0
    if n - n_val - n_test < 1:
        raise UserError(f"a corpus of {n} utterances is too small for the splits {fractions}")
    ranked = sorted(ids, key=lambda i: hashlib.md5(i.encode()).hexdigest())
    out = {i: "validation" for i in ranked[:n_val]}
    out.update({i: "test" for i in ranked[n_val : n_val + n_test]})
    out.update({i: "train" for i in ranked[n_val + n_test :]})
    return out


def corpus_splits(corpus_dir: str | Path, ids: list[str], fractions=DEFAULT_FRACTIONS):
    """The split of each id: as pinned by the corpus's splits.csv if it has one (written by
    ``tts-jax corpus --extend``; ``fractions`` are then not used), else :func:`assign_splits`."""
    path = Path(corpus_dir) / SPLITS_FILE
    if not path.is_file():
        return assign_splits(ids, fractions)
    pinned = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        utt_id, sep, split = line.strip().partition("|")
        if not line.strip():
            continue
        if not sep or split not in SPLITS:
            raise UserError(
                f"{path} line {n}: expected 'id|split' with split one of {SPLITS}, got {line!r}"
            )
        pinned[utt_id] = split
    missing = [i for i in ids if i not in pinned]
    if missing:
        raise UserError(
            f"{path} gives no split for {len(missing)} utterance(s) of metadata.csv, "
            f"e.g. {missing[:3]}; list every id once, or delete it to split by id hash"
        )
    return {i: pinned[i] for i in ids}


def _config_name(mel: audio.MelConfig, fractions) -> str:
    fields = dataclasses.asdict(mel)
    if fields["framing"] == "centered":  # the default: datasets built before it keep their name
        del fields["framing"]
    key = json.dumps([fields, list(fractions)], sort_keys=True)
    return (
        f"sr{mel.sample_rate}_hop{mel.hop_length}_mel{mel.n_mels}_"
        + hashlib.md5(key.encode()).hexdigest()[:8]
    )


class LJSpeechFolder(tfds.core.ShardBasedBuilder):
    """TFDS builder for an LJSpeech-format folder. One builder config per front-end setting.

    Shard-based rather than generator-based: examples stream to disk in corpus order, shard by
    shard. (The generator-based writer shuffles through a 1 GB memory buffer and needs
    TensorFlow beyond it, which a full LJSpeech exceeds.) Record ``i`` of a split is the
    ``i``-th utterance of that split in metadata.csv order.
    """

    UTTERANCES_PER_SHARD = 512

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "id, texts, int16 audio and log-mel; hash-based splits."}

    def __init__(self, *, corpus_dir, mel: audio.MelConfig, fractions=DEFAULT_FRACTIONS, **kw):
        self._corpus_dir = Path(corpus_dir)
        self._mel = mel
        self._fractions = tuple(fractions)
        config = tfds.core.BuilderConfig(name=_config_name(mel, fractions))
        super().__init__(config=config, **kw)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="LJSpeech-format corpus with precomputed log-mels (tts_jax).",
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "text": tfds.features.Text(),
                    "normalized_text": tfds.features.Text(),
                    # BYTES: one raw buffer per array. The default stores arrays as protobuf
                    # number lists, which serialise element by element (20x slower here).
                    "audio": tfds.features.Tensor(
                        shape=(None,), dtype=np.int16, encoding=tfds.features.Encoding.BYTES
                    ),
                    "mel": tfds.features.Tensor(
                        shape=(None, self._mel.n_mels),
                        dtype=np.float32,
                        encoding=tfds.features.Encoding.BYTES,
                    ),
                }
            ),
            metadata=tfds.core.MetadataDict(
                sample_rate=self._mel.sample_rate, mel=dataclasses.asdict(self._mel)
            ),
        )

    def _shard_iterators_per_split(self, dl_manager):
        rows = read_metadata(self._corpus_dir)
        assignment = corpus_splits(self._corpus_dir, [r.id for r in rows], self._fractions)
        by_split = {s: [] for s in SPLITS}
        for r in rows:
            by_split[assignment[r.id]].append(r)
        n = self.UTTERANCES_PER_SHARD
        return {
            s: [
                functools.partial(self._generate_examples, r[i : i + n])
                for i in range(0, len(r), n)
            ]
            for s, r in by_split.items()
            if r
        }

    def _generate_examples(self, rows):
        for r in rows:
            wav = audio.load_wav(self._corpus_dir / "wavs" / f"{r.id}.wav", self._mel.sample_rate)
            pcm = np.clip(np.round(wav * 32767.0), -32768, 32767).astype(np.int16)
            # The mel is computed from the int16-quantised audio the vocoders will read back.
            mel = audio.log_mel_np(pcm.astype(np.float32) / 32767.0, self._mel)
            yield (
                r.id,
                {
                    "id": r.id,
                    "text": r.text,
                    "normalized_text": r.normalized_text,
                    "audio": pcm,
                    "mel": mel,
                },
            )


def _tfds_dir(corpus_dir: Path) -> Path:
    return corpus_dir / "tfds"


def prepare(
    corpus_dir: str | Path,
    mel: audio.MelConfig = audio.MelConfig(),
    fractions=DEFAULT_FRACTIONS,
    data_dir: str | Path | None = None,
) -> Path:
    """Builds (once) the TFDS dataset of a corpus folder and its index; returns the data dir.

    The dataset lives under ``data_dir`` (default ``CORPUS/tfds``) in a config named after the
    front-end parameters, so a different mel setting builds a new dataset beside the old.
    """
    corpus_dir = Path(corpus_dir)

    def make_builder():
        return LJSpeechFolder(
            corpus_dir=corpus_dir,
            mel=mel,
            fractions=fractions,
            data_dir=str(data_dir or _tfds_dir(corpus_dir)),
            file_format="array_record",
        )

    builder = make_builder()
    index_path = Path(builder.data_dir) / _INDEX_FILE
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        built = {i: s for s, split in index.items() for i in split["ids"]}
        rows = read_metadata(corpus_dir)
        listed = corpus_splits(corpus_dir, [r.id for r in rows], fractions)
        if built != listed:  # the corpus or its splits were rebuilt since: a stale cache
            logging.getLogger(__name__).warning(
                "%s was built from another metadata.csv or splits.csv "
                "(%d utterances, now %d); rebuilding it",
                builder.data_dir,
                len(built),
                len(listed),
            )
            shutil.rmtree(builder.data_dir)
            builder = make_builder()
    if not index_path.is_file():
        read_metadata(corpus_dir)  # fail early with a clear message
        builder.download_and_prepare()
        sources = builder.as_data_source()
        _write_index(index_path, {s: sources[s] for s in sources})
    return Path(builder.data_dir)


def _write_index(path: Path, sources: dict) -> None:
    index = {}
    for split, src in sources.items():
        ids, texts, frames, samples = [], [], [], []
        for i in range(len(src)):
            ex = src[i]
            ids.append(_str(ex["id"]))
            texts.append(_str(ex.get("normalized_text", ex.get("text_normalized", ex["text"]))))
            n = len(ex["audio"] if "audio" in ex else ex["speech"])
            samples.append(n)
            frames.append(len(ex["mel"]) if "mel" in ex else None)
        index[split] = {"ids": ids, "texts": texts, "num_frames": frames, "num_samples": samples}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, path)


def _str(x) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """Random access to one split: the index in memory, audio and mels read on demand."""

    name: str
    source: object  # tfds ArrayRecordDataSource (or a list of records, in tests)
    ids: list[str]
    texts: list[str]  # normalised text
    num_frames: np.ndarray  # [N] int
    num_samples: np.ndarray  # [N] int
    mel: audio.MelConfig
    source_rate: int

    def __len__(self) -> int:
        return len(self.ids)

    def example(self, i: int) -> dict:
        """``{"audio": float32 [T], "mel": float32 [T // hop, n_mels]}`` of example ``i``."""
        ex = self.source[int(i)]
        if "mel" in ex:
            pcm = ex["audio"]
            return {"audio": pcm.astype(np.float32) / 32767.0, "mel": ex["mel"]}
        # TFDS's own ljspeech stores only the waveform: compute the mel here.
        wav = np.asarray(ex["speech"], np.float32) / 32768.0
        wav = audio.resample(wav, self.source_rate, self.mel.sample_rate)
        return {"audio": wav, "mel": audio.log_mel_np(wav, self.mel)}


@dataclasses.dataclass
class Corpus:
    splits: dict[str, Split]
    mel: audio.MelConfig

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise UserError(f"split {name!r} is empty or unknown; have {sorted(self.splits)}")
        return self.splits[name]


def open_corpus(
    path: str | Path,
    mel: audio.MelConfig = audio.MelConfig(),
    fractions=DEFAULT_FRACTIONS,
    tfds_data_dir: str | None = None,
) -> Corpus:
    """Opens a corpus folder (building its TFDS dataset when needed) or ``tfds:NAME``."""
    path = str(path)
    if path.startswith("tfds:"):
        return _open_official(path[len("tfds:") :], mel, fractions, tfds_data_dir)
    data_dir = prepare(path, mel, fractions, data_dir=tfds_data_dir)
    builder = tfds.builder_from_directory(str(data_dir))
    sources = builder.as_data_source()
    index = json.loads((data_dir / _INDEX_FILE).read_text())
    splits = {}
    for name, idx in index.items():
        splits[name] = Split(
            name=name,
            source=sources[name],
            ids=idx["ids"],
            texts=idx["texts"],
            num_frames=np.asarray(idx["num_frames"], np.int64),
            num_samples=np.asarray(idx["num_samples"], np.int64),
            mel=mel,
            source_rate=mel.sample_rate,
        )
    return Corpus(splits, mel)


def _open_official(name: str, mel, fractions, data_dir) -> Corpus:
    """TFDS's ``ljspeech`` (one 'train' split of {id, speech, text, text_normalized}):
    our hash split is applied on top, mels are computed when read."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        source = builder.as_data_source(split="train")
    except Exception as e:  # noqa: BLE001 - TFDS raises many types for a missing dataset
        raise UserError(
            f"cannot open TFDS dataset {name!r} (data_dir={data_dir}): {e}. Build it first with "
            f"`tfds build {name}` (needs tensorflow and the LJSpeech archive), or point "
            "data.path at an extracted LJSpeech-1.1 folder instead."
        ) from None
    cache = Path(os.path.expanduser("~/.cache/tts_jax")) / f"{name}_{builder.version}.json"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        _write_index(cache, {"train": source})
    idx = json.loads(cache.read_text())["train"]
    rate = int(builder.info.features["speech"].sample_rate)
    hop_scale = mel.sample_rate / rate
    assignment = assign_splits(idx["ids"], fractions)
    members = {s: [] for s in SPLITS}
    for i, utt_id in enumerate(idx["ids"]):
        members[assignment[utt_id]].append(i)
    splits = {}
    for s, rows in members.items():
        if not rows:
            continue
        samples = np.round(np.asarray(idx["num_samples"])[rows] * hop_scale).astype(np.int64)
        splits[s] = Split(
            name=s,
            source=_Subset(source, rows),
            ids=[idx["ids"][i] for i in rows],
            texts=[idx["texts"][i] for i in rows],
            num_frames=mel.num_frames(samples),
            num_samples=samples,
            mel=mel,
            source_rate=rate,
        )
    return Corpus(splits, mel)


class _Subset:
    def __init__(self, source, rows):
        self.source, self.rows = source, rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.source[self.rows[i]]
