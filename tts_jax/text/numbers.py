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
