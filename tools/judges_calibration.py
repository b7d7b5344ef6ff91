"""How far the reference-free judges can be trusted: CER/WER of a recognizer and DNSMOS on
audio whose intelligibility is known, from espeak itself (near 0 % CER) to audio of other
sentences (near 100 %).

    python tools/judges_calibration.py --corpus runs/corpus \
        [--recognizer asr-espeak] [--tacotron2 tacotron2-espeak] [--text-to-wave W] \
        [--limit 50] [--json docs/judges_calibration.json] [--page docs/judges.md]

Rows, each on the same sentences and scored against the text spoken:

* espeak's recordings of the corpus test split, and espeak reading
  ``data/heldout_sentences.txt`` (hand-written, most words outside any generated corpus);
* the Griffin-Lim copy-synthesis of the test split (60 iterations, the vocoder floor);
* the shipped Tacotron 2 (+ Griffin-Lim) on both sets, and a text-to-wave run if given;
* the test split's recordings with white noise at 0 dB SNR, played backwards, and paired
  with another utterance's text (every utterance scored against the next one's text).

Writes the JSON (with date, commit and machine) and the table between the page's
``<!-- BEGIN report:judges -->`` markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from tools.model_card import machine  # noqa: E402
from tools.report import update_readme  # noqa: E402
from tts_jax import audio, pretrained  # noqa: E402
from tts_jax.data.corpus import espeak_reference  # noqa: E402
from tts_jax.data.ljspeech import open_corpus  # noqa: E402
from tts_jax.data.sentences import read_sentences  # noqa: E402
from tts_jax.eval.dnsmos import SCORES, dnsmos  # noqa: E402
from tts_jax.eval.intelligibility import cer, wer  # noqa: E402

HELDOUT = REPO / "data" / "heldout_sentences.txt"


def white_noise_at(wav: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """``wav`` plus white Gaussian noise ``snr_db`` below its mean power."""
    noise = np.random.default_rng(seed).standard_normal(len(wav)).astype(np.float32)
    noise *= np.sqrt(np.mean(wav**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (wav + noise).astype(np.float32)


def score(name: str, wavs: list, texts: list[str], sr: int, recognizer, with_dnsmos: bool):
    """One row: corpus CER/WER of the recognizer's transcripts and mean DNSMOS."""
    start = time.time()
    heard = recognizer.transcribe([audio.resample(w, sr, recognizer.sample_rate) for w in wavs])
    row = {"system": name, "n": len(wavs), "cer": cer(texts, heard), "wer": wer(texts, heard)}
    row["examples"] = [{"text": t, "heard": h} for t, h in list(zip(texts, heard, strict=True))[:3]]
    if with_dnsmos:
        scores = [dnsmos(w, sr) for w in wavs]
        row.update({k: float(np.mean([s[k] for s in scores])) for k in SCORES})
    print(
        f"{name}: CER {row['cer']:.3f} WER {row['wer']:.3f}"
        + (f" DNSMOS OVRL {row['dnsmos_ovrl']:.2f}" if with_dnsmos else "")
        + f" ({time.time() - start:.0f} s)",
        flush=True,
    )
    return row


def table(rows: list[dict], meta: dict) -> str:
    dns = any("dnsmos_ovrl" in r for r in rows)
    head = "| audio | n | CER ↓ | WER ↓ |" + "".join(f" {h} |" for _, h in SCORES.values()) * dns
    lines = [head, "|---|---|---|---|" + "---|" * (len(SCORES) * dns)]
    for r in rows:
        cells = [r["system"], str(r["n"]), f"{100 * r['cer']:.1f} %", f"{100 * r['wer']:.1f} %"]
        if dns:
            cells += [f"{r[k]:.2f}" for k in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Recognizer `{meta['recognizer']}` (step {meta['recognizer_step']}); measured "
        f"{meta['date']} at commit `{meta['commit']}` on {meta['machine']} by "
        "`python tools/judges_calibration.py`."
    )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True, help="the shipped Tacotron 2's corpus folder")
    p.add_argument("--recognizer", default=pretrained.RECOGNIZER)
    p.add_argument("--tacotron2", default=pretrained.DEFAULT)
    p.add_argument("--text-to-wave", default=None, help="a text_to_wave workdir (own waveform)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--no-dnsmos", action="store_true")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "judges_calibration.json")
    p.add_argument("--page", type=Path, default=REPO / "docs" / "judges.md")
    args = p.parse_args()

    recognizer = pretrained.load_recognizer(args.recognizer)
    split = open_corpus(args.corpus).split("test")
    sr = split.mel.sample_rate
    n = min(args.limit, len(split))
    texts = [split.texts[i] for i in range(n)]
    recorded = [split.example(i)["audio"] for i in range(n)]
    mels = [split.example(i)["mel"] for i in range(n)]
    sentences = list(read_sentences(HELDOUT))[: args.limit]
    espeak_heldout = [espeak_reference(t, sample_rate=sr) for t in sentences]
    judge = dict(sr=sr, recognizer=recognizer, with_dnsmos=not args.no_dnsmos)

    rows = [
        score("espeak, test split", recorded, texts, **judge),
        score("espeak, held-out sentences", espeak_heldout, sentences, **judge),
        score(
            "Griffin-Lim copy of the test split",
            [np.asarray(audio.mel_to_audio(m, split.mel)) for m in mels],
            texts,
            **judge,
        ),
    ]
    for label, path in [("Tacotron 2", args.tacotron2), ("text-to-wave", args.text_to_wave)]:
        if path is None:
            continue
        tts = pretrained.load(path, vocoder="griffin-lim" if label == "Tacotron 2" else None)
        step = tts.synthesizer.step
        own = " (own waveform)" if label == "text-to-wave" else " + Griffin-Lim"
        for where, words in [("test split", texts), ("held-out sentences", sentences)]:
            wavs = [s.audio for s in tts.synthesize(words)]
            rows.append(score(f"{label} (step {step}){own}, {where}", wavs, words, **judge))
    rows += [
        score(
            "espeak + white noise at 0 dB SNR, test split",
            [white_noise_at(w, 0.0, seed=i) for i, w in enumerate(recorded)],
            texts,
            **judge,
        ),
        score(
            "espeak played backwards, test split",
            [w[::-1].copy() for w in recorded],
            texts,
            **judge,
        ),
        score(
            "espeak of the next utterance's text, test split",
            recorded,
            texts[1:] + texts[:1],
            **judge,
        ),
    ]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    meta = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "machine": machine(os.cpu_count()),
        "recognizer": str(args.recognizer),
        "recognizer_step": int(recognizer.step),
        "corpus_test_utterances": n,
        "heldout_sentences": len(sentences),
    }
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    update_readme(args.page, "judges", table(rows, meta))
    print(f"judges: {len(rows)} rows -> {args.json}, {args.page}")


if __name__ == "__main__":
    main()
