"""Text front end: cleaners, symbol tables and the text <-> id round trip.

``frontend="chars"`` (Tacotron 2's character input), ``"ipa"`` (espeak-ng phonemes) or
``"nvidia"`` (NVIDIA/tacotron2's table, for its imported models: characters, ARPAbet in braces
as in ``"Turn left on {HH AW1 S S T AH0 N} Street."``, and no EOS). Characters outside the
table raise :class:`~tts_jax.errors.UserError` naming them, or are dropped with a warning when
``unknown="drop"``.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np

from tts_jax.errors import UserError
from tts_jax.text.cleaners import clean
from tts_jax.text.phonemes import to_ipa
from tts_jax.text.symbols import CHARACTERS, NVIDIA, PHONEMES, SymbolTable

TABLES = {"chars": CHARACTERS, "ipa": PHONEMES, "nvidia": NVIDIA}
_arpabet = re.compile(r"\{(.+?)\}")


@dataclasses.dataclass(frozen=True)
class TextConfig:
    frontend: str = "chars"  # "chars" | "ipa"
    cleaners: str = "english"  # "english" | "basic" | "none"
    unknown: str = "error"  # "error" | "drop"
    voice: str = "en-us"  # espeak voice for the IPA front end

    def __post_init__(self):
        if self.frontend not in TABLES:
            raise UserError(
                f"text.frontend must be one of {', '.join(TABLES)}, got {self.frontend!r}"
            )
        if self.unknown not in ("error", "drop"):
            raise UserError(f"text.unknown must be 'error' or 'drop', got {self.unknown!r}")

    @classmethod
    def from_config(cls, cfg) -> TextConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})


def symbol_table(cfg: TextConfig = TextConfig()) -> SymbolTable:
    return TABLES[cfg.frontend]


def normalize(text: str, cfg: TextConfig = TextConfig()) -> str:
    """Cleaned text, transcribed to IPA when the front end says so."""
    cleaned = clean(text, cfg.cleaners)
    if cfg.frontend == "ipa":
        return to_ipa(cleaned, cfg.voice)
    return cleaned


def _symbols(text: str, cfg: TextConfig) -> list[str]:
    """The cleaned text as symbols. With the ``nvidia`` front end, text in braces is ARPAbet
    (``{HH AW1}`` -> ``@HH @AW1``) and the text around it is cleaned piece by piece, as
    NVIDIA's ``text_to_sequence``."""
    if cfg.frontend != "nvidia":
        return list(normalize(text, cfg))
    out = []
    for i, piece in enumerate(_arpabet.split(text)):
        out += ["@" + p for p in piece.split()] if i % 2 else list(clean(piece, cfg.cleaners))
    return out


def text_to_ids(text: str, cfg: TextConfig = TextConfig()) -> np.ndarray:
    """Raw text -> int32 ids ``[N]``, ending with EOS when the table has one."""
    if not isinstance(text, str):
        raise UserError(f"text must be a string, got {type(text).__name__}")
    symbols = _symbols(text, cfg)
    table = symbol_table(cfg)
    index = {s: i for s, i in table.index.items() if i != table.pad_id}  # "_" is not text
    unknown = sorted({c for c in symbols if c not in index})
    if unknown:
        listed = ", ".join(repr(c) for c in unknown)
        if cfg.unknown == "error":
            raise UserError(
                f"text {text!r} contains characters outside the {cfg.frontend!r} symbol table: "
                f"{listed} (pass --config.data.text.unknown=drop, or TextConfig(unknown='drop'), "
                "to drop them)"
            )
        warnings.warn(f"dropping characters outside the symbol table: {listed}", stacklevel=2)
        symbols = [c for c in symbols if c in index]
    if not "".join(symbols).strip():
        raise UserError(f"text {text!r} is empty after cleaning")
    eos = [] if table.eos_id is None else [table.eos_id]
    return np.array([index[c] for c in symbols] + eos, dtype=np.int32)


def ids_to_text(ids, cfg: TextConfig = TextConfig()) -> str:
    """Inverse of :func:`text_to_ids` on the cleaned text: stops at EOS, skips padding, and
    writes ARPAbet back in braces."""
    table = symbol_table(cfg)
    out = []
    for i in np.asarray(ids).tolist():
        if i == table.eos_id:
            break
        if i != table.pad_id:
            s = table.symbols[i]
            out.append(f"{{{s[1:]}}}" if s.startswith("@") else s)
    return "".join(out).replace("}{", " ")
