"""Transcripts: the one text normalisation a recognizer is trained on and scored with.

:func:`normalize_transcript` states what a listener can hear in a sentence and nothing else:

* **numbers, abbreviations, symbols**: spelled out by the project's English cleaners
  (:func:`tts_jax.text.cleaners.english_cleaners`: "Dr. Smith paid $5" -> "doctor smith paid
  five dollars"), which is also what the corpus builder hands espeak;
* **case**: lower case;
* **punctuation**: none; a hyphen or any other mark between words becomes a space
  ("well-known" -> "well known"), an apostrophe survives only between two letters ("don't",
  "john's"; quotes and a plural possessive's trailing one are dropped);
* **whitespace**: runs collapsed to one space, none at either end.

The recognizer's outputs (:data:`ALPHABET`) are exactly the characters such a text holds, so
its transcripts are already normalised, and CER/WER (:mod:`tts_jax.eval.intelligibility`)
apply the same function to both sides. It is idempotent.
"""

from __future__ import annotations

import re

import numpy as np

from tts_jax.errors import UserError
from tts_jax.text.cleaners import english_cleaners

BLANK = 0  # the CTC blank's id; not a character
ALPHABET = " '" + "abcdefghijklmnopqrstuvwxyz"  # ids 1.. in this order
NUM_CLASSES = 1 + len(ALPHABET)

_outside = re.compile(r"[^a-z' ]+")
_loose_apostrophe = re.compile(r"(?<![a-z])'|'(?![a-z])")
_spaces = re.compile(r" +")
_index = {c: i + 1 for i, c in enumerate(ALPHABET)}


def normalize_transcript(text: str) -> str:
    """``text`` as the recognizer writes it (the module docstring states the rules)."""
    text = english_cleaners(text)
    text = _outside.sub(" ", text.lower())
    text = _loose_apostrophe.sub(" ", text)
    return _spaces.sub(" ", text).strip()


def transcript_to_labels(text: str) -> np.ndarray:
    """A normalised transcript -> int32 label ids ``[N]`` (1..len(ALPHABET); no blank)."""
    bad = sorted({c for c in text if c not in _index})
    if bad:
        raise UserError(
            f"transcript {text!r} holds characters outside the recognizer's alphabet: "
            f"{', '.join(map(repr, bad))} (normalize_transcript it first)"
        )
    return np.array([_index[c] for c in text], np.int32)


def labels_to_transcript(labels) -> str:
    """Label ids (no blanks) -> text."""
    return "".join(ALPHABET[i - 1] for i in np.asarray(labels).tolist())
