"""Write the shipped recognizer's MODEL_CARD.md from what is measured (numbers produced, not
typed): its file and sha256, recipe, training steps and time, and its CER/WER on espeak
recordings of its corpus's test split and of ``data/heldout_sentences.txt``, greedy and
with the lexicon beam search.

    python tools/asr_card.py --model data/asr_espeak --workdir runs/asr_cpu \
        --corpus runs/corpus_words20k [--limit 200]
"""

# ruff: noqa: E501  (the card template's table rows are one line each)
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

from model_card import machine  # noqa: E402
from tacotron2_report import training_minutes  # noqa: E402

from tts_jax import audio, exported  # noqa: E402
from tts_jax.data.corpus import espeak_reference  # noqa: E402
from tts_jax.data.ljspeech import open_corpus  # noqa: E402
from tts_jax.data.sentences import read_sentences  # noqa: E402
from tts_jax.eval.intelligibility import cer, wer  # noqa: E402
from tts_jax.models.asr import BeamSearch, LexiconBeamDecoder, Recognizer  # noqa: E402
from tts_jax.models.asr.decoding import DECODING_FILE, arpa_words  # noqa: E402

HELDOUT = REPO / "data" / "heldout_sentences.txt"


def rates(recognizer, beam, wavs, texts) -> dict:
    mels = [audio.log_mel_np(w, recognizer.mel) for w in wavs]
    greedy = recognizer.transcribe_mels(mels)
    log_probs = recognizer.log_probs_of_mels(mels)
    searched = [beam(lp) for lp in log_probs]
    return {
        "n": len(texts),
        "greedy": {"cer": cer(texts, greedy), "wer": wer(texts, greedy)},
        "beam": {"cer": cer(texts, searched), "wer": wer(texts, searched)},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--workdir", required=True, type=Path, help="the run it was exported from")
    p.add_argument("--corpus", required=True, help="the corpus it was trained on")
    p.add_argument("--limit", type=int, default=200)
    args = p.parse_args()

    meta = json.loads((args.model / "model.json").read_text())
    settings = BeamSearch.read(args.model / DECODING_FILE)
    tuning = json.loads((args.model / "decoding_tuning.json").read_text())
    beam = LexiconBeamDecoder(settings, args.model)
    recognizer = Recognizer(args.model)
    recognizer.beam = None  # greedy and beam side by side, from the same log-probabilities
    split = open_corpus(args.corpus).split("test")
    n = min(args.limit, len(split))
    test = rates(
        recognizer,
        beam,
        [split.example(i)["audio"] for i in range(n)],
        [split.texts[i] for i in range(n)],
    )
    sentences = list(read_sentences(HELDOUT))
    sr = recognizer.sample_rate
    heldout = rates(
        recognizer, beam, [espeak_reference(t, sample_rate=sr) for t in sentences], sentences
    )
    minutes = [m for s, m in training_minutes(args.workdir).items() if s <= meta["step"]]
    size = os.path.getsize(args.model / exported.VARIABLES) / 2**20
    lm_size = os.path.getsize(args.model / settings.lm) / 2**20
    words = len(arpa_words(args.model / settings.lm))
    c = recognizer.config

    def cells(r):
        return (
            f"{100 * r['greedy']['cer']:.1f} % | {100 * r['greedy']['wer']:.1f} % | "
            f"{100 * r['beam']['cer']:.1f} % | {100 * r['beam']['wer']:.1f} %"
        )

    card = f"""# Speech recognizer, espeak voice: the judge of intelligibility shipped with tts-jax

| | |
|---|---|
| files | `data/asr_espeak/{exported.VARIABLES}`, {size:.1f} MiB, {meta["dtype"]}; `{settings.lm}`, {lm_size:.1f} MiB |
| sha256 | `{meta["sha256"]}` (variables) |
| model | Conformer-CTC (Gulati et al. 2020) at the `:cpu` size: {meta["parameters"]:,} parameters, {c.model.num_blocks} blocks of {c.model.model_dim}, characters out |
| input | 80-bin log-mel of 22,050 Hz audio, hop 256 (any other rate is resampled) |
| output | lower-case letters, space and apostrophe: `tts_jax.text.transcripts.normalize_transcript`'s form |
| decoding | lexicon beam search (flashlight-text, KenLM): {words:,} words, English's most frequent by `wordfreq`, with their unigram frequencies; lm_weight {settings.lm_weight}, word_score {settings.word_score}, beam {settings.beam_size}, tuned on {tuning["validation_utterances"]} validation utterances (`decoding_tuning.json`) |
| recipe | `experiments/asr.py:cpu` (full config: `config.json` beside this card) |
| corpus | `tts-jax corpus --out runs/corpus_words20k --num-utterances 8000 --words 20000`: generated sentences, half of whose slots hold English's 20,000 most frequent words, spoken by espeak-ng en-us (9.6 h) |
| training | {meta["step"]:,} steps of the config's {c.train.num_steps:,}, {minutes[-1] if minutes else float("nan"):.0f} minutes of wall time on {machine(2)}, shared with other jobs |
| source | `tts-jax export --workdir runs/asr_cpu --dtype float16`, then `python tools/asr_lexicon.py` |

## Error rates

Corpus rates over espeak-ng's recordings (`python tools/asr_card.py`), greedy decoding and
the lexicon beam search. The held-out sentences are hand-written; about half of their words
never occur in the training corpus.

| audio | n | CER greedy | WER greedy | CER beam | WER beam |
|---|---|---|---|---|---|
| its corpus's test split | {test["n"]} | {cells(test)} |
| `data/heldout_sentences.txt` | {heldout["n"]} | {cells(heldout)} |

The calibration table in `docs/judges.md` shows it on synthesized and degraded audio.

## Use and limits

* It knows one voice, espeak's: use it to compare systems that speak like espeak (the
  models trained on the embedded corpus), not to score human speech.
* A word outside its lexicon cannot be written, and counts as an error.
* The target of a judge, CER at most 5 % on the held-out sentences, is not yet met: the
  run above stopped at {meta["step"]:,} of its {c.train.num_steps:,} steps; its command
  resumes it.
"""
    (args.model / "MODEL_CARD.md").write_text(card)
    (args.model / "card_numbers.json").write_text(
        json.dumps(
            {"test": test, "heldout": heldout, "minutes": minutes[-1] if minutes else None},
            indent=1,
        )
    )
    print(card)


if __name__ == "__main__":
    main()
