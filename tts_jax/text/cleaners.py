"""Text normalisation run before text is turned into symbols.

``english`` (the default, as in Tacotron 2): ASCII transliteration, numbers / currency / ordinals
/ years / times spelled out, lowercase, common abbreviations expanded, whitespace collapsed.
``basic``: lowercase and whitespace only. ``none``: the text as given. ``nvidia``:
NVIDIA/tacotron2's ``english_cleaners``, for its imported models (fewer abbreviations, its own
number readings, whitespace collapsed but not stripped).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from anyascii import anyascii

from tts_jax.errors import UserError
from tts_jax.text.numbers import expand_numbers, expand_numbers_nvidia

# (abbreviation without its dot, expansion), matched case-insensitively after lowercasing.
_ABBREVIATIONS = [
    ("mrs", "missus"),
    ("mr", "mister"),
    ("ms", "miz"),
    ("dr", "doctor"),
    ("drs", "doctors"),
    ("st", "saint"),
    ("co", "company"),
    ("jr", "junior"),
    ("sr", "senior"),
    ("maj", "major"),
    ("gen", "general"),
    ("rev", "reverend"),
    ("lt", "lieutenant"),
    ("hon", "honorable"),
    ("sgt", "sergeant"),
    ("capt", "captain"),
    ("esq", "esquire"),
    ("ltd", "limited"),
    ("col", "colonel"),
    ("ft", "fort"),
    ("prof", "professor"),
    ("vs", "versus"),
    ("etc", "et cetera"),
    ("approx", "approximately"),
    ("dept", "department"),
    ("no", "number"),
    ("mt", "mount"),
    ("ave", "avenue"),
]
_abbrev_re = [(re.compile(rf"\b{a}\.", re.IGNORECASE), e) for a, e in _ABBREVIATIONS]
# "no." only means "number" before a digit; elsewhere it ends a sentence ("I said no.").
_abbrev_re = [(r, e) for r, e in _abbrev_re if e != "number"]
_number_abbrev = re.compile(r"\bno\.\s?(?=\d)", re.IGNORECASE)
_am_pm = re.compile(r"\b([ap])\.?m\.(?=\W|$)", re.IGNORECASE)
_whitespace = re.compile(r"\s+")
_dashes = re.compile(r"\s*[\u2013\u2014]\s*|\s--\s")


def collapse_whitespace(text: str) -> str:
    return _whitespace.sub(" ", text).strip()


def expand_abbreviations(text: str) -> str:
    text = _number_abbrev.sub("number ", text)
    # "p.m." at the end of a sentence is also its full stop: keep one.
    text = _am_pm.sub(
        lambda m: f"{m.group(1).lower()} m" + ("." if m.end() == len(m.string) else ""), text
    )
    for pattern, expansion in _abbrev_re:
        text = pattern.sub(expansion, text)
    return text


def english_cleaners(text: str) -> str:
    text = _dashes.sub(", ", text)
    text = expand_abbreviations(text)
    text = expand_numbers(text)  # before transliteration, which would turn "£" into "GBP"
    text = _transliterate(text)
    text = text.lower()
    return collapse_whitespace(text)


def _transliterate(text: str) -> str:
    """ASCII for letters (``naïve`` -> ``naive``); non-ASCII symbols (emoji, arrows, maths)
    are kept as typed, so that the symbol table refuses (or drops) them by their own name
    rather than reading out anyascii's ``:grinning:`` or ``->``."""
    return "".join(
        c if ord(c) > 127 and unicodedata.category(c) in ("So", "Sm", "Sk") else anyascii(c)
        for c in text
    )


# NVIDIA/tacotron2's abbreviation list (keithito/tacotron's), "misess" included.
_NVIDIA_ABBREVIATIONS = [
    (re.compile(rf"\b{a}\.", re.IGNORECASE), e)
    for a, e in [
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
    ]
]


def nvidia_cleaners(text: str) -> str:
    """NVIDIA/tacotron2's ``english_cleaners`` in its order: ASCII, lowercase, numbers,
    abbreviations, whitespace runs to one space. Transliteration is anyascii's where NVIDIA
    uses unidecode (GPL); the two agree on accented letters."""
    text = expand_numbers_nvidia(anyascii(text).lower())
    for pattern, expansion in _NVIDIA_ABBREVIATIONS:
        text = pattern.sub(expansion, text)
    return _whitespace.sub(" ", text)


def basic_cleaners(text: str) -> str:
    return collapse_whitespace(text.lower())


CLEANERS: dict[str, Callable[[str], str]] = {
    "english": english_cleaners,
    "basic": basic_cleaners,
    "nvidia": nvidia_cleaners,
    "none": lambda text: text,
}


def clean(text: str, cleaners: str = "english") -> str:
    if cleaners not in CLEANERS:
        raise UserError(f"unknown text cleaners {cleaners!r}; expected one of {sorted(CLEANERS)}")
    return CLEANERS[cleaners](text)
