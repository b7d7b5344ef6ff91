"""Text front end: cleaners, symbol tables and the text <-> id round trip.

``frontend="chars"`` (Tacotron 2's character input) or ``"ipa"`` (espeak-ng phonemes).
Characters outside the table raise :class:`~tts_jax.errors.UserError` naming them, or are
dropped with a warning when ``unknown="drop"``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from tts_jax.errors import UserError
from tts_jax.text.cleaners import clean
from tts_jax.text.phonemes import to_ipa
from tts_jax.text.symbols import CHARACTERS, PHONEMES, SymbolTable


@dataclasses.dataclass(frozen=True)
class TextConfig:
    frontend: str = "chars"  # "chars" | "ipa"
    cleaners: str = "english"  # "english" | "basic" | "none"
    unknown: str = "error"  # "error" | "drop"
    voice: str = "en-us"  # espeak voice for the IPA front end

    def __post_init__(self):
        if self.frontend not in ("chars", "ipa"):
            raise UserError(f"text.frontend must be 'chars' or 'ipa', got {self.frontend!r}")
        if self.unknown not in ("error", "drop"):
            raise UserError(f"text.unknown must be 'error' or 'drop', got {self.unknown!r}")

    @classmethod
    def from_config(cls, cfg) -> TextConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})


def symbol_table(cfg: TextConfig = TextConfig()) -> SymbolTable:
    return PHONEMES if cfg.frontend == "ipa" else CHARACTERS


def normalize(text: str, cfg: TextConfig = TextConfig()) -> str:
    """Cleaned text, transcribed to IPA when the front end says so."""
    cleaned = clean(text, cfg.cleaners)
    if cfg.frontend == "ipa":
        return to_ipa(cleaned, cfg.voice)
    return cleaned


def text_to_ids(text: str, cfg: TextConfig = TextConfig()) -> np.ndarray:
    """Raw text -> int32 ids ``[N]`` ending with EOS."""
    if not isinstance(text, str):
        raise UserError(f"text must be a string, got {type(text).__name__}")
    symbols = normalize(text, cfg)
    index = symbol_table(cfg).index
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
        symbols = "".join(c for c in symbols if c in index)
    if not symbols.strip():
        raise UserError(f"text {text!r} is empty after cleaning")
    return np.array([index[c] for c in symbols] + [index["~"]], dtype=np.int32)


def ids_to_text(ids, cfg: TextConfig = TextConfig()) -> str:
    """Inverse of :func:`text_to_ids` on the cleaned text: stops at EOS, skips padding."""
    table = symbol_table(cfg).symbols
    out = []
    for i in np.asarray(ids).tolist():
        if i == 1:
            break
        if i != 0:
            out.append(table[i])
    return "".join(out)
