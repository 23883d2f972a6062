"""Words and numbers as shoppers read them: prices, attribute labels, product links."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote

WEB_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
# C0 and C1 controls but tab, newline and carriage return: no place in a page's text
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
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


def url_scheme(url: str) -> str | None:
    """The scheme a browser reads in a link (lower case), None for a relative link.

    As the URL standard parses it: tabs and newlines anywhere and C0 controls or spaces
    around it are ignored, so " java\tscript:" is javascript."""
    match = _SCHEME.match(_TAB_OR_NEWLINE.sub("", url).strip(_C0_OR_SPACE))
    return match.group(1).lower() if match else None


def is_safe_link(url: str) -> bool:
    """Whether a link may be live: a path on this site or an http(s) URL (never
    javascript:, data:, vbscript: or any other scheme)."""
    return url_scheme(url) in (None, *WEB_SCHEMES)


def shop_link(url: str | None) -> str | None:
    """A product's "View in shop" URL if it is an absolute http(s) URL, else None."""
    return url if url and url_scheme(url) in WEB_SCHEMES else None


def without_controls(text: str) -> str:
    """Text with control characters (NUL, ESC, DEL, C1, ...) removed; tabs and newlines
    stay."""
    return _CONTROLS.sub("", text)
