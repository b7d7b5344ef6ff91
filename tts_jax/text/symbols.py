"""Symbol inventories: id 0 is padding in every table, and id 1 end-of-sequence in ours.

``NVIDIA`` is NVIDIA/tacotron2's 148-symbol table (after keithito/tacotron), for imported
models: padding, ``-``, ten punctuation marks, the letters and CMUdict's 84 ARPAbet phones
written ``@PHONE``; it has no end-of-sequence symbol.
"""

from __future__ import annotations

import dataclasses

PAD = "_"
EOS = "~"
PUNCTUATION = " !'\",-.:;?()"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Symbols espeak-ng emits for English (and most European voices) in IPA mode, plus stress and
# length marks. Kept explicit so that a table's ids never depend on the data it first met.
IPA = (
    "abcdefhijklmnopqrstuvwxyz"
    "æçðøħŋœǀǁǂǃɐɑɒɓɔɕɖɗɘəɚɛɜɝɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢ"
    "ʤʧʰʲʷˈˌːˑ˞ᵻβθχⱱ̩̃"
)


# CMUdict's phone set: 15 vowels, each bare and with stress 0, 1 and 2, and 24 consonants.
_VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
_CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
ARPABET = tuple(sorted([*_CONSONANTS, *(v + s for v in _VOWELS for s in ("", "0", "1", "2"))]))


@dataclasses.dataclass(frozen=True)
class SymbolTable:
    """Bijection between symbols (single characters, or ``@PHONE`` for ARPAbet) and integer
    ids. With ``eos`` (our tables), id 1 is EOS and ends every encoded utterance."""

    symbols: tuple[str, ...]
    eos: bool = True

    def __post_init__(self):
        if self.symbols[0] != PAD or (self.eos and self.symbols[1] != EOS):
            raise ValueError("a symbol table starts with PAD, then EOS if it has one")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("duplicate symbols in table")

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int | None:
        return 1 if self.eos else None

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}


def _table(chars: str) -> SymbolTable:
    seen = dict.fromkeys(chars)  # keeps order, drops repeats
    return SymbolTable((PAD, EOS, *seen))


CHARACTERS = _table(PUNCTUATION + LETTERS)
PHONEMES = _table(PUNCTUATION + IPA)
NVIDIA = SymbolTable((PAD, "-", *"!'(),.:;? ", *LETTERS, *("@" + p for p in ARPABET)), eos=False)
