"""Symbol inventories: id 0 is padding and id 1 end-of-sequence in every table."""

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


@dataclasses.dataclass(frozen=True)
class SymbolTable:
    """Bijection between symbols (single characters) and integer ids."""

    symbols: tuple[str, ...]

    def __post_init__(self):
        if self.symbols[0] != PAD or self.symbols[1] != EOS:
            raise ValueError("a symbol table starts with PAD then EOS")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("duplicate symbols in table")

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return 1

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
