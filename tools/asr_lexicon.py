"""Give an exported recognizer a lexicon beam search: English's most frequent words as its
lexicon and unigram language model, the two weights tuned on its corpus's validation split.

    python tools/asr_lexicon.py --model data/asr_espeak --corpus runs/corpus_words20k \
        [--words 100000] [--limit 200]

Writes ``MODEL/lexicon.arpa`` and ``MODEL/decoding.json``
(:mod:`tts_jax.models.asr.decoding`) and prints the grid: validation CER and WER of greedy
decoding and of each ``(lm_weight, word_score)``. Nothing the recognizer is later scored on
(the test split, ``data/heldout_sentences.txt``) is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tts_jax import audio  # noqa: E402
from tts_jax.data.ljspeech import open_corpus  # noqa: E402
from tts_jax.eval.intelligibility import cer, wer  # noqa: E402
from tts_jax.models.asr import BeamSearch, LexiconBeamDecoder, Recognizer  # noqa: E402
from tts_jax.models.asr.decoding import (  # noqa: E402
    DECODING_FILE,
    english_unigrams,
    write_unigram_arpa,
)

LM_WEIGHTS = (0.5, 1.0, 2.0, 3.0)
WORD_SCORES = (0.0, 2.0, 4.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="an exported recognizer's folder")
    p.add_argument("--corpus", required=True, help="the corpus it was trained on")
    p.add_argument("--words", type=int, default=100_000)
    p.add_argument("--limit", type=int, default=200, help="validation utterances to tune on")
    args = p.parse_args()

    (args.model / DECODING_FILE).unlink(missing_ok=True)  # the greedy recognizer, to tune
    recognizer = Recognizer(args.model)
    split = open_corpus(args.corpus).split("validation")
    n = min(args.limit, len(split))
    texts = [split.texts[i] for i in range(n)]
    mels = [audio.log_mel_np(split.example(i)["audio"], recognizer.mel) for i in range(n)]
    log_probs = recognizer.log_probs_of_mels(mels)
    greedy = recognizer.transcribe_mels(mels)
    grid = [{"decoding": "greedy", "cer": cer(texts, greedy), "wer": wer(texts, greedy)}]
    print(f"greedy: CER {grid[0]['cer']:.4f} WER {grid[0]['wer']:.4f}", flush=True)

    write_unigram_arpa(english_unigrams(args.words), args.model / "lexicon.arpa")
    best = None
    for lm_weight in LM_WEIGHTS:
        for word_score in WORD_SCORES:
            settings = BeamSearch("lexicon.arpa", lm_weight=lm_weight, word_score=word_score)
            decoder = LexiconBeamDecoder(settings, args.model)
            heard = [decoder(lp) for lp in log_probs]
            row = {
                "decoding": "beam",
                "lm_weight": lm_weight,
                "word_score": word_score,
                "cer": cer(texts, heard),
                "wer": wer(texts, heard),
            }
            grid.append(row)
            print(
                f"lm_weight {lm_weight} word_score {word_score}: CER {row['cer']:.4f} "
                f"WER {row['wer']:.4f}",
                flush=True,
            )
            if best is None or row["cer"] < best[1]["cer"]:
                best = (settings, row)
    best[0].write(args.model / DECODING_FILE)
    (args.model / "decoding_tuning.json").write_text(
        json.dumps(
            {
                "words": args.words,
                "validation_utterances": n,
                "corpus": Path(args.corpus).name,
                "grid": grid,
            },
            indent=1,
        )
    )
    print(f"asr_lexicon: {best[0]} -> {args.model / DECODING_FILE}")


if __name__ == "__main__":
    main()
