"""Lexicon-constrained CTC beam search with a word language model.

Greedy decoding (:func:`tts_jax.models.asr.model.greedy_decode`) spells every word as it
sounds, so a character recognizer trained on a few hours of speech writes "sonlit" for
"sunlight". The standard remedy of CTC recognizers (e.g. wav2letter's and the LibriSpeech
recipes) is a beam search over the character posteriors in which only words of a lexicon
can be formed and a language model scores them:

    score(W) = log P_ctc(W | x) + lm_weight * log P_lm(W) + word_score * |W|

The search itself is flashlight-text's ``LexiconDecoder`` (the decoder torchaudio wraps),
with its bundled KenLM reading an ARPA file. The lexicon and model shipped with the
recognizer are English's most frequent words with their unigram frequencies from
``wordfreq`` (:func:`english_unigrams`), general knowledge of English that holds no sentence
the recognizer is scored on; ``lm_weight`` and ``word_score`` are tuned on the validation
split of the recognizer's corpus. A word outside the lexicon cannot be written: it counts as
an error, as it would for any closed-vocabulary recognizer.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from flashlight.lib.text.decoder import (
    CriterionType,
    LexiconDecoder,
    LexiconDecoderOptions,
    SmearingMode,
    Trie,
)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from tts_jax.errors import UserError
from tts_jax.text.transcripts import ALPHABET, BLANK, normalize_transcript

TOKENS = ["<blank>", *ALPHABET]  # the recognizer's output ids, blank first
WORD_BOUNDARY = TOKENS.index(" ")
DECODING_FILE = "decoding.json"  # beside an exported recognizer: its beam search's settings
SPECIAL_WORDS = ("<s>", "</s>", "<unk>")


@dataclasses.dataclass(frozen=True)
class BeamSearch:
    """A recognizer's beam-search settings, as ``decoding.json`` holds them; ``lm`` is the
    ARPA file's name, relative to that file's folder."""

    lm: str
    lm_weight: float = 2.0
    word_score: float = 0.0
    beam_size: int = 50
    beam_threshold: float = 25.0

    @classmethod
    def read(cls, path) -> BeamSearch:
        fields = {f.name for f in dataclasses.fields(cls)}
        raw = json.loads(Path(path).read_text())
        unknown = sorted(set(raw) - fields)
        if unknown or "lm" not in raw:
            raise UserError(
                f"{path}: expected the fields {sorted(fields)} ('lm' required); got {sorted(raw)}"
            )
        return cls(**raw)

    def write(self, path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")


def english_unigrams(num_words: int) -> dict[str, float]:
    """English's ``num_words`` most frequent words (``wordfreq``), each in the recognizer's
    normalised spelling, with its relative frequency (words that normalise alike add up)."""
    try:
        import wordfreq
    except ImportError:
        raise UserError(
            "building a lexicon needs wordfreq: pip install 'tts-jax[corpus]'"
        ) from None
    words: dict[str, float] = {}
    for word in wordfreq.top_n_list("en", num_words):
        spelled = normalize_transcript(word)
        p = wordfreq.word_frequency(word, "en")
        if spelled and " " not in spelled and p > 0:
            words[spelled] = words.get(spelled, 0.0) + p
    return words


def write_unigram_arpa(words: dict[str, float], path, end_probability: float = 0.05) -> None:
    """A unigram language model in ARPA form: each word's probability its share of
    ``words``' mass, ``</s>`` ``end_probability``. KenLM reads only models of order two or
    more, so the file declares one bigram (``<s> </s>``) that a decode never uses."""
    total = sum(words.values())
    lines = [
        "\\data\\",
        f"ngram 1={len(words) + len(SPECIAL_WORDS)}",
        "ngram 2=1",
        "",
        "\\1-grams:",
        "-99\t<s>\t0",  # never predicted, only a context
        f"{math.log10(end_probability):.6f}\t</s>\t0",
        "-99\t<unk>\t0",
    ]
    scale = (1.0 - end_probability) / total
    lines += [f"{math.log10(p * scale):.6f}\t{w}\t0" for w, p in words.items()]
    lines += ["", "\\2-grams:", "-1\t<s> </s>", "", "\\end\\", ""]
    Path(path).write_text("\n".join(lines))


def arpa_words(path) -> list[str]:
    """The words of an ARPA file's unigram section, specials left out."""
    words, inside = [], False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line == "\\1-grams:":
                inside = True
            elif line.startswith("\\"):
                if inside:
                    break
            elif inside and line:
                word = line.split("\t")[1]
                if word not in SPECIAL_WORDS:
                    words.append(word)
    return words


class LexiconBeamDecoder:
    """CTC log-probabilities ``[T, len(TOKENS)]`` -> the best lexicon-word transcript."""

    def __init__(self, settings: BeamSearch, folder):
        arpa = Path(folder) / settings.lm
        if not arpa.is_file():
            raise UserError(f"the recognizer's language model {arpa} is missing")
        self.settings = settings
        tokens = Dictionary()
        for t in TOKENS:
            tokens.add_entry(t)
        self._words = Dictionary()
        for w in SPECIAL_WORDS:
            self._words.add_entry(w)
        lexicon = arpa_words(arpa)
        bad = [w for w in lexicon if normalize_transcript(w) != w]
        if bad:
            raise UserError(f"{arpa}: words outside the recognizer's alphabet, e.g. {bad[0]!r}")
        for w in lexicon:
            self._words.add_entry(w)
        self._lm = KenLM(str(arpa), self._words)
        trie = Trie(len(TOKENS), WORD_BOUNDARY)
        start = self._lm.start(False)
        for w in lexicon:
            index = self._words.get_index(w)
            _, score = self._lm.score(start, index)
            trie.insert([TOKENS.index(c) for c in w] + [WORD_BOUNDARY], index, score)
        trie.smear(SmearingMode.MAX)
        options = LexiconDecoderOptions(
            beam_size=settings.beam_size,
            beam_size_token=len(TOKENS),
            beam_threshold=settings.beam_threshold,
            lm_weight=settings.lm_weight,
            word_score=settings.word_score,
            unk_score=-math.inf,  # closed vocabulary
            sil_score=0.0,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        self._decoder = LexiconDecoder(
            options,
            trie,
            self._lm,
            WORD_BOUNDARY,
            BLANK,
            self._words.get_index("<unk>"),
            [],
            False,
        )

    def __call__(self, log_probs: np.ndarray) -> str:
        x = np.ascontiguousarray(log_probs, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(TOKENS):
            raise ValueError(f"log-probabilities of shape {x.shape}; expected [T, {len(TOKENS)}]")
        if len(x) == 0:
            return ""
        best = self._decoder.decode(x.ctypes.data, x.shape[0], x.shape[1])[0]
        return " ".join(self._words.get_entry(i) for i in best.words if i >= 0)
