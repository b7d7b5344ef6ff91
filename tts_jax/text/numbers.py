"""Spelling out numbers, currency, ordinals, times and years in English words.

Digits are rewritten before anything else touches the text so that the character model never
sees a digit. Cardinal and ordinal words come from ``inflect``; this module only decides which
reading a token gets (``1984`` the year vs ``1,984`` the quantity, ``$3.50`` as money, ...).
"""

from __future__ import annotations

import re

import inflect

from tts_jax.errors import UserError

_engine = inflect.engine()

_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}

_thousands_sep = re.compile(r"(?<=\d),(?=\d{3}\b)")
_money = re.compile(r"([$£€])\s?(\d+)(?:\.(\d{1,2}))?(?:\s?(million|billion|thousand))?\b")
_percent = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_decimal = re.compile(r"\b(\d+)\.(\d+)\b")
_ordinal = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_time = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_number = re.compile(r"\d+")
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_month_day = re.compile(rf"\b({_MONTHS})\s+(\d{{1,2}})\b(?!:)", re.IGNORECASE)


def cardinal(n: int) -> str:
    """``1234`` -> ``one thousand two hundred thirty-four`` (no commas, no "and")."""
    try:
        return _engine.number_to_words(n, andword="").replace(",", "")
    except inflect.NumOutOfRangeError:
        raise UserError(
            f"the number {n} has too many digits to read out ({len(str(n))}); write it in "
            "words or split it"
        ) from None


def ordinal(n: int) -> str:
    """``23`` -> ``twenty-third``."""
    return _engine.ordinal(cardinal(n))


def year(n: int) -> str:
    """Reads four-digit years the way people say them: 1984 -> nineteen eighty-four,
    1905 -> nineteen oh five, 1900 -> nineteen hundred, 2005 -> two thousand five."""
    if 2000 <= n < 2010 or n % 1000 == 0:
        return cardinal(n)
    if n % 100 == 0:
        return f"{cardinal(n // 100)} hundred"
    return _engine.number_to_words(n, andword="", zero="oh", group=2).replace(",", "")


def _digits(s: str) -> str:
    return " ".join(cardinal(int(d)) for d in s)


def _money_words(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m.group(1)]
    whole, frac, scale = int(m.group(2)), m.group(3), m.group(4)
    if scale:  # "$3 million" -> "three million dollars"
        return f"{cardinal(whole)} {scale} {many}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if whole or not cents:
        parts.append(f"{cardinal(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    return ", ".join(parts)


def _time_words(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes == 0:
        return f"{cardinal(hours)} o'clock"
    if minutes < 10:
        return f"{cardinal(hours)} oh {cardinal(minutes)}"
    return f"{cardinal(hours)} {cardinal(minutes)}"


def _plain(m: re.Match) -> str:
    s = m.group(0)
    n = int(s)
    if len(s) == 4 and 1100 <= n <= 2099:
        return year(n)
    if len(s) > 1 and s.startswith("0"):  # codes such as "007" are read digit by digit
        return _digits(s)
    return cardinal(n)


def expand_numbers(text: str) -> str:
    """Rewrites every digit sequence in ``text`` as words."""
    text = _thousands_sep.sub("", text)
    text = _money.sub(_money_words, text)
    text = _percent.sub(lambda m: f"{m.group(1)} percent", text)
    text = _time.sub(_time_words, text)
    text = _decimal.sub(lambda m: f"{cardinal(int(m.group(1)))} point {_digits(m.group(2))}", text)
    text = _month_day.sub(lambda m: f"{m.group(1)} {ordinal(int(m.group(2)))}", text)
    text = _ordinal.sub(lambda m: ordinal(int(m.group(1))), text)
    return _number.sub(_plain, text)


# NVIDIA/tacotron2's reading of numbers (after keithito/tacotron), for its imported models:
# grouping commas dropped, "$d.c" as dollars and cents, "£n" as pounds, "a.b" as "a point b",
# ordinals by inflect, 1001-2999 read as years, other numbers by inflect with its commas.
_nv_grouped = re.compile(r"([0-9][0-9,]+[0-9])")
_nv_pounds = re.compile(r"£([0-9,]*[0-9]+)")
_nv_dollars = re.compile(r"\$([0-9.,]*[0-9]+)")
_nv_decimal = re.compile(r"([0-9]+\.[0-9]+)")
_nv_ordinal = re.compile(r"[0-9]+(st|nd|rd|th)")


def _nv_dollar_words(m: re.Match) -> str:
    parts = m.group(1).split(".")
    if len(parts) > 2:
        return f"{m.group(1)} dollars"
    dollars = int(parts[0]) if parts[0] else 0
    cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    dollar_unit = "dollar" if dollars == 1 else "dollars"
    cent_unit = "cent" if cents == 1 else "cents"
    if dollars and cents:
        return f"{dollars} {dollar_unit}, {cents} {cent_unit}"
    if dollars or cents:
        return f"{dollars} {dollar_unit}" if dollars else f"{cents} {cent_unit}"
    return "zero dollars"


def _nv_number_words(m: re.Match) -> str:
    n = int(m.group(0))
    if not 1000 < n < 3000:
        return _engine.number_to_words(n, andword="")
    if n == 2000:
        return "two thousand"
    if 2000 < n < 2010:
        return "two thousand " + _engine.number_to_words(n % 100)
    if n % 100 == 0:
        return _engine.number_to_words(n // 100) + " hundred"
    return _engine.number_to_words(n, andword="", zero="oh", group=2).replace(", ", " ")


def expand_numbers_nvidia(text: str) -> str:
    """NVIDIA/tacotron2's ``normalize_numbers``: the same readings, so that an imported model
    gets the symbols it was trained on (``1,250,000`` -> ``one million, two hundred fifty
    thousand``; ``March 3`` stays a cardinal)."""
    text = _nv_grouped.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _nv_pounds.sub(r"\1 pounds", text)
    text = _nv_dollars.sub(_nv_dollar_words, text)
    text = _nv_decimal.sub(lambda m: m.group(1).replace(".", " point "), text)
    text = _nv_ordinal.sub(lambda m: _engine.number_to_words(m.group(0)), text)
    return _number.sub(_nv_number_words, text)
