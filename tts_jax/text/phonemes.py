"""IPA front end: English text to espeak-ng phonemes, keeping clause punctuation.

espeak's ``TextToPhonemes`` drops punctuation, which carries prosody (pauses, questions), so
the text is split at punctuation first and each piece is transcribed on its own.
"""

from __future__ import annotations

import re

from tts_jax import espeak

_pieces = re.compile(r"([!\"(),.:;?-]+)")


def to_ipa(text: str, voice: str = "en-us") -> str:
    """``"hello, world."`` -> ``"həlˈoʊ, wˈɜːld."`` (words separated by spaces)."""
    out = []
    for piece in _pieces.split(text):
        if not piece:
            continue
        if _pieces.fullmatch(piece):
            out.append(piece)
        elif piece.strip():
            lead = " " if piece[0] == " " and out else ""
            trail = " " if piece[-1] == " " else ""
            out.append(lead + espeak.phonemize(piece.strip(), voice) + trail)
        else:
            out.append(piece)
    return re.sub(r"\s+", " ", "".join(out)).strip()
