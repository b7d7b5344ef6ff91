"""Intelligibility: character and word error rates of a transcript against the text spoken.

Both sides go through :func:`tts_jax.text.transcripts.normalize_transcript` first (numbers
and abbreviations spelled out, lower case, no punctuation, one space between words), so a
rate counts only differences a listener could hear. The edit counts are ``jiwer``'s
(Levenshtein alignment over characters, spaces included, for CER; over words for WER).

* ``CER = (S + D + I) / N`` over characters, ``N`` the reference's characters;
* ``WER`` the same over words.

Rates over several utterances are corpus rates: the edits of all of them over the
references' total length (not a mean of per-utterance rates), as in the literature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jiwer

from tts_jax.text.transcripts import normalize_transcript


@dataclasses.dataclass(frozen=True)
class ErrorCounts:
    """Edits against a reference of ``length`` units (characters or words)."""

    substitutions: int
    deletions: int
    insertions: int
    length: int

    @property
    def edits(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.edits / self.length


def _normalized(references: Sequence[str], hypotheses: Sequence[str]):
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise TypeError("give lists of strings (one per utterance), not a single string")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    refs = [normalize_transcript(r) for r in references]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(
            f"reference {empty[0]} ({references[empty[0]]!r}) is empty after normalisation: "
            "an error rate needs words to miss"
        )
    return refs, [normalize_transcript(h) for h in hypotheses]


def character_errors(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorCounts:
    """Character edits of ``hypotheses`` against ``references`` (normalised, summed)."""
    refs, hyps = _normalized(references, hypotheses)
    out = jiwer.process_characters(refs, hyps)
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, sum(len(r) for r in refs))


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorCounts:
    """Word edits of ``hypotheses`` against ``references`` (normalised, summed)."""
    refs, hyps = _normalized(references, hypotheses)
    out = jiwer.process_words(refs, hyps)
    return ErrorCounts(
        out.substitutions, out.deletions, out.insertions, sum(len(r.split()) for r in refs)
    )


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus character error rate (0 = perfect; can exceed 1 with many insertions)."""
    return character_errors(references, hypotheses).rate


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate (0 = perfect; can exceed 1 with many insertions)."""
    return word_errors(references, hypotheses).rate
