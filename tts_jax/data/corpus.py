"""The embedded default corpus: generated sentences spoken by libespeak-ng, in LJSpeech format.

Layout written (and read by :mod:`tts_jax.data.ljspeech`), as in LJSpeech-1.1::

    DIR/metadata.csv      id|text|normalized_text      (no header, UTF-8)
    DIR/wavs/ID.wav       22,050 Hz mono PCM16
    DIR/speakers.csv      id|voice                      (ours; LJSpeech has one speaker)
    DIR/splits.csv        id|split                      (only for a corpus built with --extend)

The normalised text (cleaners applied) is what espeak speaks, so audio and the third column
agree word for word. Leading and trailing silence is trimmed.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from tts_jax import audio, espeak
from tts_jax.data.ljspeech import (
    SPLITS_FILE,
    assign_splits,
    corpus_splits,
    read_metadata,
    read_speakers,
)
from tts_jax.data.sentences import english_words, generate_sentences
from tts_jax.errors import UserError
from tts_jax.text.cleaners import english_cleaners


def speak(normalized_text: str, voice: str = "en-us", rate: int = 160, sample_rate: int = 22050):
    """One utterance as the corpus has it: espeak at ``rate``, resampled, silence trimmed."""

    wav = espeak.synthesize(normalized_text, voice=voice, rate=rate)
    wav = audio.resample(wav, espeak.SAMPLE_RATE, sample_rate)
    return audio.trim_silence(wav, top_db=50.0)


def espeak_reference(text: str, voice: str = "en-us", sample_rate: int = 22050):
    """What the corpus would hold for raw ``text`` (cleaned as the corpus builder cleans it):
    the reference that synthesised speech of new sentences is scored against."""

    return speak(english_cleaners(text), voice, sample_rate=sample_rate)


def _speak_chunk(jobs: list[tuple[str, str, str]], wav_dir: str, rate: int, sample_rate: int):
    """Worker: synthesise ``(id, normalized_text, voice)`` jobs and write their wavs."""

    durations = []
    for utt_id, text, voice in jobs:
        wav = speak(text, voice, rate, sample_rate)
        if wav.size == 0:
            raise RuntimeError(f"espeak produced no audio for {utt_id}: {text!r}")
        audio.save_wav(Path(wav_dir) / f"{utt_id}.wav", wav, sample_rate)
        durations.append(len(wav) / sample_rate)
    return durations


def build_corpus(
    out_dir: str | Path,
    num_utterances: int,
    seed: int = 0,
    voices: tuple[str, ...] = ("en-us",),
    sample_rate: int = 22050,
    rate: int = 160,
    workers: int | None = None,
    prefix: str = "ESP",
    words: int = 0,
    extend: str | Path | None = None,
) -> dict:
    """Writes an LJSpeech-format corpus of ``num_utterances`` and returns a summary dict.

    ``voices`` are espeak voice names (see :func:`tts_jax.espeak.voices`); utterance ``i`` is
    spoken by ``voices[i % len(voices)]``. Deterministic for ``seed``. Existing files in
    ``out_dir`` are overwritten.

    ``words > 0`` widens the text with English's ``words`` most frequent words (see
    :mod:`tts_jax.data.sentences`). ``extend`` names a corpus whose utterances the new one
    also holds (wavs hard-linked), each in the split it has there: splits.csv pins them, so a
    run continued on the new corpus never trains on the old one's held-out sentences. The new
    utterances get their own hash splits, and none repeats a sentence of ``extend``.
    """
    if num_utterances < 1:
        raise UserError(f"--num-utterances must be >= 1, got {num_utterances}")
    known = set(espeak.voices())
    bad = [v for v in voices if v not in known]
    if bad:
        raise UserError(f"unknown espeak voice(s) {bad}; available: {sorted(known)}")
    base, base_splits, base_voices = [], {}, {}
    if extend is not None:
        extend = Path(extend)
        if extend.resolve() == Path(out_dir).resolve():
            raise UserError(f"--extend {extend}: the corpus to extend must not be --out itself")
        base = read_metadata(extend)
        base_splits = corpus_splits(extend, [r.id for r in base])
        base_voices = read_speakers(extend)

    start = time.time()
    out = Path(out_dir)
    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    extra = english_words(words) if words > 0 else ()
    texts = generate_sentences(
        num_utterances, seed=seed, extra_words=extra, exclude={r.text for r in base}
    )
    width = max(4, len(str(num_utterances)))
    rows = []
    for i, text in enumerate(texts):
        utt_id = f"{prefix}{seed:03d}-{i + 1:0{width}d}"
        rows.append((utt_id, text, english_cleaners(text), voices[i % len(voices)]))
    clash = sorted({r[0] for r in rows} & set(base_splits))[:3]
    if clash:
        raise UserError(
            f"--extend {extend} already has utterance ids such as {clash}: pass another --seed"
        )

    jobs = [(r[0], r[2], r[3]) for r in rows]
    workers = workers or min(4, multiprocessing.cpu_count())
    chunks = [jobs[i::workers] for i in range(workers) if jobs[i::workers]]
    if len(chunks) == 1:
        durations = _speak_chunk(chunks[0], str(wav_dir), rate, sample_rate)
    else:
        ctx = multiprocessing.get_context("spawn")  # libespeak-ng is per-process state
        with concurrent.futures.ProcessPoolExecutor(len(chunks), mp_context=ctx) as pool:
            futures = [
                pool.submit(_speak_chunk, c, str(wav_dir), rate, sample_rate) for c in chunks
            ]
            durations = [d for f in futures for d in f.result()]

    for r in base:
        _link(extend / "wavs" / f"{r.id}.wav", wav_dir / f"{r.id}.wav")
        durations.append(sf.info(str(wav_dir / f"{r.id}.wav")).duration)
    base_rows = [(r.id, r.text, r.normalized_text, base_voices.get(r.id, "unknown")) for r in base]
    rows = base_rows + rows
    with open(out / "metadata.csv", "w", encoding="utf-8") as f:
        for utt_id, text, norm, _ in rows:
            f.write(f"{utt_id}|{text}|{norm}\n")
    with open(out / "speakers.csv", "w", encoding="utf-8") as f:
        for utt_id, _, _, voice in rows:
            f.write(f"{utt_id}|{voice}\n")
    splits_path = out / SPLITS_FILE
    if base:
        splits = {**base_splits, **assign_splits([r[0] for r in rows[len(base) :]])}
        with open(splits_path, "w", encoding="utf-8") as f:
            for utt_id, *_ in rows:
                f.write(f"{utt_id}|{splits[utt_id]}\n")
    elif splits_path.exists():
        splits_path.unlink()  # a rebuilt corpus: the old pinned splits no longer apply
    return {
        "path": str(out),
        "utterances": len(rows),
        "hours": float(np.sum(durations)) / 3600.0,
        "voices": sorted({r[3] for r in rows}),
        "seconds": time.time() - start,
    }


def _link(src: Path, dst: Path) -> None:
    """Hard-links ``src`` to ``dst`` (a copy across file systems)."""
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
