"""Words and numbers as shoppers read them: prices, attribute labels, product links."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any
from urllib.parse import quote

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}


def format_price(price: Any, currency: Any) -> str:
    """Price as a shopper reads it ("€12.50", "12.50 SEK"); "" when unknown."""
    if price is None or isinstance(price, bool):
        return ""
    try:
        amount = float(price)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(amount):
        return ""
    symbol = CURRENCY_SYMBOLS.get(str(currency or "").upper())
    if symbol:
        return f"{symbol}{amount:,.2f}"
    return f"{amount:,.2f} {currency}" if currency else f"{amount:,.2f}"


@lru_cache(maxsize=256)  # called with the catalog's own attribute names only
def attribute_label(name: str) -> str:
    """Readable label for an attribute name: "baseColour" -> "Base colour"."""
    words: list[str] = []
    current = ""
    for ch in name.replace("_", " ").replace("-", " "):
        if ch.isupper() and current and not current[-1].isupper() and current[-1] != " ":
            words.append(current)
            current = ch.lower()
        else:
            current += ch
    words.append(current)
    text = " ".join(w.strip() for w in words if w.strip())
    return text[:1].upper() + text[1:]


def product_href(product_id: str) -> str:
    """The URL of a product's page."""
    return f"/product/{quote(product_id, safe='')}"
