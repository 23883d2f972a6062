"""Prices as shops write them -> a plain decimal and an ISO 4217 code (pure).

The amount and the currency symbol come from ``price-parser`` (Zyte's parser, tested on
about a thousand real price strings); this module adds what a catalog needs on top:

- the symbol becomes an ISO 4217 code: a table of the symbols shops use (``R$`` BRL,
  ``C$`` CAD, ``руб`` RUB, ``円`` JPY, ...) first, then price-parser's own currency table;
  an ambiguous symbol (``$``, ``kr``, ``¥``) takes the hint's code when it fits, else the
  most common one;
- structured data (schema.org, OpenGraph, feeds) always writes ``.`` as the decimal mark,
  so ``"12.500"`` there is twelve and a half, not 12500;
- when a text has several numbers, the one next to the currency wins
  (``3 Ausgaben für nur 14,85 EUR`` -> 14.85); percentages are never prices.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from price_parser import Price

# Symbols as shops write them -> ISO 4217; checked before price-parser's table, which
# lacks some (the hryvnia, the rouble sign, A$) and maps others to rare currencies (C$ to
# NIO, the rouble's abbreviation to PRB, the lev's to KGS).
SYMBOLS = {
    "$": "USD", "US$": "USD", "USD$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "￥": "JPY",
    "円": "JPY", "CN¥": "CNY", "元": "CNY", "RMB": "CNY", "₹": "INR", "Rs": "INR", "Rs.": "INR",
    "₩": "KRW", "원": "KRW", "₽": "RUB", "руб": "RUB", "руб.": "RUB", "р.": "RUB", "р": "RUB",
    "₺": "TRY", "TL": "TRY", "zł": "PLN", "Zł": "PLN", "kr": "SEK", "kr.": "DKK",
    "Fr.": "CHF", "SFr.": "CHF", "R$": "BRL", "C$": "CAD", "CA$": "CAD", "A$": "AUD",
    "AU$": "AUD", "NZ$": "NZD", "HK$": "HKD", "S$": "SGD", "NT$": "TWD", "MX$": "MXN",
    "Kč": "CZK", "lei": "RON", "Lei": "RON", "LEI": "RON", "грн": "UAH", "грн.": "UAH",
    "₴": "UAH", "лв": "BGN", "лв.": "BGN", "Rp": "IDR", "₫": "VND", "đ": "VND", "₪": "ILS",
    "Ft": "HUF", "฿": "THB", "₱": "PHP", "₦": "NGN", "₸": "KZT", "тңг": "KZT", "₾": "GEL",
    "R": "ZAR", "kn": "EUR", "din": "RSD", "дин.": "RSD", "RM": "MYR", "₡": "CRC",
}
# Which codes a symbol may stand for, so a hint can choose among them.
_FAMILIES = {
    "$": {"USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "ARS", "CLP", "COP", "TWD", "UYU",
          "JMD", "TTD", "BSD", "BBD", "FJD", "XCD", "LRD", "BND", "BZD", "BMD", "KYD", "SRD",
          "GYD", "WST", "SBD", "TVD", "CUC"},
    "kr": {"SEK", "NOK", "DKK", "ISK"}, "kr.": {"SEK", "NOK", "DKK", "ISK"},
    "¥": {"JPY", "CNY"}, "￥": {"JPY", "CNY"}, "£": {"GBP", "EGP", "GIP", "FKP", "SHP"},
    "R": {"ZAR"}, "Rs": {"INR", "PKR", "LKR", "NPR", "MUR"}, "Rs.": {"INR", "PKR", "LKR", "NPR"},
    "₨": {"PKR", "INR", "LKR", "NPR", "SCR", "MUR"}, "₩": {"KRW", "KPW"}, "원": {"KRW", "KPW"},
}
_OBSOLETE = {"ATS", "BEF", "CYP", "DEM", "EEK", "ESP", "FIM", "FRF", "GRD", "IEP", "ITL", "LTL",
             "LUF", "LVL", "MTL", "NLG", "PTE", "SIT", "SKK", "VAL", "HRK", "ZMK", "USN", "NTD",
             "PRB"}
_PERCENT = re.compile(r"[-+]?\d+(?:[.,]\d+)?\s*%")
_NUMBER = re.compile(r"(?:\d[\d\u00a0\u202f '.,]*\d|\d|[.,]\d+)")
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


@cache
def _table() -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    """ISO codes and symbol -> codes from price-parser's currency data."""
    try:
        from price_parser._currencies import CURRENCIES
    except ImportError:  # private module: without it, our own table still works
        return frozenset(SYMBOLS.values()), {}
    by_symbol: dict[str, set[str]] = {}
    for code, info in CURRENCIES.items():
        for sym in (info.get("s"), info.get("sn"), *info.get("sn2", [])):
            if sym and sym != "-":
                by_symbol.setdefault(sym, set()).add(code)
    codes = frozenset(c for c in CURRENCIES if re.fullmatch(r"[A-Z]{3}", c))
    return codes, {k: tuple(sorted(v - _OBSOLETE or v)) for k, v in by_symbol.items()}


def iso_codes() -> frozenset[str]:
    """Every ISO 4217 code known here."""
    return _table()[0] | frozenset(SYMBOLS.values())


def currency_code(symbol: str | None, hint: str | None = None) -> str | None:
    """The ISO 4217 code for a currency symbol or code as a page shows it (``€``,
    ``eur``, ``R$``, ``руб.``); ``hint`` (an ISO code or a symbol) decides between the
    currencies an ambiguous symbol (``$``, ``kr``, ``¥``) may mean. None if unknown."""
    hint_code = currency_code(hint) if hint and hint != symbol else None
    if not symbol or not symbol.strip():
        return hint_code
    text = " ".join(symbol.split())
    codes, by_symbol = _table()
    if text.upper() in codes and (text.isupper() or text.islower()) and len(text) == 3:
        return text.upper()
    family = _FAMILIES.get(text) or _FAMILIES.get(text.rstrip("."))
    if hint_code and family and hint_code in family:
        return hint_code
    for key in (text, text.rstrip("."), text.lower()):
        if key in SYMBOLS:
            return SYMBOLS[key]
    candidates = by_symbol.get(text) or by_symbol.get(text.rstrip(".")) or ()
    if hint_code in candidates:
        return hint_code
    return candidates[0] if candidates else None


def _decimal_text(value: Decimal) -> str | None:
    if not value.is_finite() or value < 0:
        return None
    return format(value, "f")


def _nearest_number(text: str, symbol: str) -> str | None:
    """The number written next to ``symbol`` when ``text`` has several."""
    at = text.find(symbol)
    numbers = list(_NUMBER.finditer(text))
    if at < 0 or len(numbers) < 2:
        return None
    if re.search(r"\d\s*" + re.escape(symbol) + r"\s*\d", text):
        return None  # "35€99": the symbol is the decimal mark, price-parser reads it
    end = at + len(symbol)

    def distance(m: re.Match[str]) -> int:
        return at - m.end() if m.end() <= at else max(m.start() - end, 0)

    return min(numbers, key=distance).group(0)


def parse_price(value: Any, hint: str | None = None,
                structured: bool = False) -> tuple[str | None, str | None]:
    """``'€1.299,00'`` -> ``('1299.00', 'EUR')``: a plain decimal and an ISO code.

    ``hint`` is the currency the profile or page states (code or symbol), used when the
    text shows none or an ambiguous one. ``structured``: the value comes from structured
    data (schema.org, OpenGraph, a JSON feed), where ``.`` is always the decimal mark.
    """
    if value is None or isinstance(value, bool):
        return None, currency_code(None, hint)
    if isinstance(value, int | float | Decimal):
        try:
            return _decimal_text(Decimal(str(value))), currency_code(None, hint)
        except InvalidOperation:
            return None, currency_code(None, hint)
    text = " ".join(str(value).split())
    if structured and _PLAIN_DECIMAL.fullmatch(text):
        try:
            return _decimal_text(Decimal(text)), currency_code(None, hint)
        except InvalidOperation:
            return None, currency_code(None, hint)
    text = _PERCENT.sub(" ", text)  # "40% OFF" is no price
    hint_symbol = hint if hint and not re.fullmatch(r"[A-Z]{3}", hint) else None
    price = Price.fromstring(text, currency_hint=hint_symbol)
    symbol = price.currency
    if symbol:
        near = _nearest_number(text, symbol)
        if near is not None:
            price = Price.fromstring(f"{near} {symbol}")
    amount = _decimal_text(price.amount) if price.amount is not None else None
    return amount, currency_code(symbol, hint) if symbol else currency_code(None, hint)
