"""Scoring sets of (reference, synthesized) waveforms and writing the result tables.

``tts-jax evaluate`` builds the pairs (two folders of wavs, or copy-synthesis of a corpus
split with Griffin-Lim as the training-free floor) and calls :func:`evaluate_pairs`, which
writes ``OUT/eval.json`` (per-utterance rows + summary) and ``OUT/eval.md`` (the table).
A pair that a metric cannot score is recorded with its error instead of stopping the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tts_jax import audio
from tts_jax.errors import UserError
from tts_jax.eval import dnsmos as dnsmos_lib
from tts_jax.eval.intelligibility import cer, wer
from tts_jax.eval.metrics import MetricError, all_metrics, summarize

# Display order and units of the metrics in tables.
METRICS = {
    "mcd_db": "MCD (dB) ↓",
    "log_mel_l1": "log-mel L1 ↓",
    "mr_stft_total": "MR-STFT ↓",
    "pesq_wb": "PESQ-WB ↑",
    "stoi": "STOI ↑",
    "f0_rmse_hz": "F0 RMSE (Hz) ↓",
    "vuv_error": "V/UV error ↓",
}


def folder_pairs(reference_dir, synthesized_dir, sample_rate: int) -> Iterator[tuple]:
    """Pairs of same-named wavs in two folders."""
    ref_dir, syn_dir = Path(reference_dir), Path(synthesized_dir)
    for d in (ref_dir, syn_dir):
        if not d.is_dir():
            raise UserError(f"not a folder of wavs: {d}")
    names = sorted(
        {p.name for p in ref_dir.glob("*.wav")} & {p.name for p in syn_dir.glob("*.wav")}
    )
    if not names:
        raise UserError(f"no wav file names in common between {ref_dir} and {syn_dir}")
    noted = set()
    for name in names:
        for d in (ref_dir, syn_dir):
            rate = audio.wav_info(d / name).samplerate
            if rate != sample_rate and (d, rate) not in noted:
                noted.add((d, rate))
                print(f"evaluate: {d / name} is at {rate} Hz: resampled to {sample_rate} Hz")
        yield (
            Path(name).stem,
            audio.load_wav(ref_dir / name, sample_rate),
            audio.load_wav(syn_dir / name, sample_rate),
        )


def griffin_lim_pairs(split, limit: int, n_iter: int = 60) -> Iterator[tuple]:
    """Copy-synthesis of a corpus split's ground-truth mels with Griffin-Lim."""
    return copy_synthesis_pairs(
        split, limit, lambda mel: np.asarray(audio.mel_to_audio(mel, split.mel, n_iter=n_iter))
    )


def copy_synthesis_pairs(split, limit: int, vocoder) -> Iterator[tuple]:
    """(id, recorded audio, ``vocoder(ground-truth mel)``) for the first ``limit`` utterances."""
    for i in range(min(limit, len(split))):
        ex = split.example(i)
        yield split.ids[i], ex["audio"], np.asarray(vocoder(ex["mel"]))


def evaluate_pairs(
    pairs: Iterable[tuple],
    sample_rate: int,
    out_dir,
    title: str,
    meta: dict | None = None,
    save_audio: int = 0,
    texts: dict[str, str] | None = None,
    recognizer=None,
    dnsmos: bool = False,
) -> dict:
    """Scores every pair, writes eval.json / eval.md under ``out_dir``, returns the summary.

    With a ``recognizer`` (a loaded ``recognizer`` role: ``.transcribe(wavs)``,
    ``.sample_rate``, ``.min_samples``) and ``texts`` (pair id -> the text spoken), each
    produced waveform is also transcribed and scored against its text: per-utterance
    ``transcript``, ``cer`` and ``wer`` in the rows, the corpus rates in ``intelligibility``
    (:mod:`tts_jax.eval.intelligibility`). With ``dnsmos``, each produced waveform also gets
    its DNSMOS P.835 and P.808 scores (:mod:`tts_jax.eval.dnsmos`), summarised like the
    reference-based metrics. No reference audio is needed for either."""
    if dnsmos:
        dnsmos_lib.check_available()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, produced, start = [], {}, time.time()
    for k, (utt, ref, syn) in enumerate(pairs):
        row = {"id": utt}
        try:
            row.update(all_metrics(ref, syn, sample_rate))
        except MetricError as e:
            row["error"] = str(e)
        if dnsmos:
            try:
                row.update(dnsmos_lib.dnsmos(syn, sample_rate))
            except UserError as e:
                row["dnsmos_error"] = str(e)
        rows.append(row)
        if recognizer is not None and texts and utt in texts:
            produced[utt] = syn
        if k < save_audio:
            audio.save_wav(out_dir / "audio" / f"{utt}.wav", syn, sample_rate)
    summary = {m: summarize([r[m] for r in rows if m in r]) for m in METRICS}
    if dnsmos:
        summary.update({m: summarize([r[m] for r in rows if m in r]) for m in dnsmos_lib.SCORES})
    result = {
        "title": title,
        "utterances": len(rows),
        "failed": sum("error" in r for r in rows),
        "seconds": time.time() - start,
        "summary": summary,
        "meta": meta or {},
        "rows": rows,
    }
    if produced:
        result["intelligibility"] = _intelligibility(rows, produced, texts, recognizer, sample_rate)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2))
    (out_dir / "eval.md").write_text(markdown_table([result]) + "\n")
    return result


def _intelligibility(rows, produced, texts, recognizer, sample_rate) -> dict:
    """Transcribes ``produced`` (id -> wav) and scores it against ``texts``: per-row
    ``transcript``/``cer``/``wer`` (rows updated in place) and the corpus rates. A clip too
    short for the recognizer counts as heard as nothing (every character deleted)."""
    ids = list(produced)
    wavs = [audio.resample(produced[i], sample_rate, recognizer.sample_rate) for i in ids]
    heard = {i: "" for i, w in zip(ids, wavs, strict=True) if len(w) < recognizer.min_samples}
    todo = [(i, w) for i, w in zip(ids, wavs, strict=True) if i not in heard]
    said = recognizer.transcribe([w for _, w in todo])
    heard.update(zip([i for i, _ in todo], said, strict=True))
    by_id = {r["id"]: r for r in rows}
    for i in ids:
        by_id[i].update(
            transcript=heard[i], cer=cer([texts[i]], [heard[i]]), wer=wer([texts[i]], [heard[i]])
        )
    refs, hyps = [texts[i] for i in ids], [heard[i] for i in ids]
    return {
        "cer": cer(refs, hyps),
        "wer": wer(refs, hyps),
        "utterances": len(ids),
        "too_short": sum(len(w) < recognizer.min_samples for w in wavs),
        "recognizer_step": int(recognizer.step),
    }


def markdown_table(results: list[dict]) -> str:
    """One row per evaluation: mean ± 95% interval of each metric (DNSMOS's too where it was
    run), and the corpus CER and WER of a recognizer's transcripts where there are some."""
    judged = any("intelligibility" in r for r in results)
    columns = dict(METRICS)
    if any(m in r["summary"] for r in results for m in dnsmos_lib.SCORES):
        columns.update({m: heading for m, (_, heading) in dnsmos_lib.SCORES.items()})
    extra = " CER ↓ | WER ↓ |" if judged else ""
    head = "| system | n | " + " | ".join(columns.values()) + " |" + extra
    rule = "|---|---|" + "---|" * (len(columns) + 2 * judged)
    lines = [head, rule]
    for r in results:
        cells = []
        for m in columns:
            s = r["summary"].get(m, {"n": 0})
            cells.append("–" if s["n"] == 0 else f"{s['mean']:.3f} ± {s['ci95']:.3f}")
        if judged:
            i = r.get("intelligibility")
            cells += [f"{i['cer']:.3f}", f"{i['wer']:.3f}"] if i else ["–", "–"]
        lines.append(
            f"| {r['title']} | {r['utterances'] - r['failed']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
