"""Pure parsing: HTML in, product records out. No network, no disk.

Listing pages yield one :class:`ProductRecord` per product card (or, without a card
selector, per schema.org ``Product``/``ItemList`` entry in JSON-LD, or per product link);
product pages refine a record from profile selectors, then JSON-LD, then OpenGraph.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from pipeline.catalog import ID_UNSAFE
from scraper.profile import DEFAULT_IMAGE_ATTRS, FieldSpec, Profile

_GENERIC_STEMS = {"", "index", "product", "products", "item", "items", "p", "view", "detail",
                  "details", "show", "dp"}
_CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW",
                     "₽": "RUB", "₺": "TRY", "zł": "PLN", "kr": "SEK", "Fr.": "CHF"}


@dataclass
class ProductRecord:
    """What a page says about one product; any field may be missing."""

    product_url: str | None = None
    image_url: str | None = None
    shop_id: str | None = None
    title: str | None = None
    price: str | None = None
    currency: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)

    def key(self) -> str | None:
        """The manifest key: the product page URL, else the image URL."""
        if self.product_url:
            return self.product_url
        return f"image:{self.image_url}" if self.image_url else None

    def merged_with(self, newer: ProductRecord) -> ProductRecord:
        """This record with every field the newer one has (product page beats listing)."""
        return ProductRecord(
            product_url=self.product_url or newer.product_url,
            image_url=newer.image_url or self.image_url,
            shop_id=newer.shop_id or self.shop_id,
            title=newer.title or self.title,
            price=newer.price or self.price,
            currency=newer.currency or self.currency,
            attrs={**self.attrs, **{k: v for k, v in newer.attrs.items() if v}},
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the manifest."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProductRecord:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


@dataclass
class ListingPage:
    """The products found on a listing page and the next page's URL, if any."""

    products: list[ProductRecord]
    next_url: str | None = None


# --- small helpers --------------------------------------------------------------------

def resolve_url(base: str, url: str | None) -> str | None:
    """Absolute http(s) URL for ``url`` found on page ``base`` (relative and ``//host``
    forms resolved, fragment dropped); None for empty, ``data:``, ``javascript:`` etc."""
    if url is None:
        return None
    url = url.strip()
    if not url or url.startswith("#"):
        return None
    absolute = urljoin(base, url)
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def pick_srcset(srcset: str) -> str | None:
    """The largest candidate of a ``srcset`` (by ``w``, else by ``x`` density)."""
    best: tuple[float, int, str] | None = None
    # Candidates are comma-separated, but URLs may themselves contain commas; split on
    # commas that follow a descriptor or precede whitespace.
    for n, candidate in enumerate(re.split(r",\s+|,(?=\S+\s+\d)", srcset.strip())):
        parts = candidate.strip().split()
        if not parts:
            continue
        url, size = parts[0].rstrip(","), 1.0
        if len(parts) > 1:
            desc = parts[1].lower()
            try:
                size = float(desc[:-1]) if desc[-1] in "wx" else float(desc)
            except (ValueError, IndexError):
                size = 1.0
        if best is None or size > best[0]:
            best = (size, n, url)
    return best[2] if best else None


def make_id(raw: Any) -> str | None:
    """A filesystem-safe catalog id (``[A-Za-z0-9._-]+``) from a shop id, or None."""
    if raw is None:
        return None
    text = ID_UNSAFE.sub("-", str(raw).strip()).strip("-.")[:120].strip("-.")
    return text or None


def slug_from_url(url: str | None) -> str | None:
    """An id from a product URL: the last path segment without its extension
    (plus the query's values when the segment is generic like ``product.php``)."""
    if not url:
        return None
    if url.startswith("image:"):
        url = url[len("image:"):]
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    stem = PurePosixPath(segments[-1]).stem if segments else ""
    if stem.lower() in _GENERIC_STEMS and parts.query:
        values = [v for _, v in parse_qsl(parts.query) if v]
        stem = "-".join(([stem] if stem else []) + values)
    elif stem.lower() in _GENERIC_STEMS and len(segments) > 1:
        stem = f"{PurePosixPath(segments[-2]).stem}-{stem}".strip("-")
    return make_id(stem)


def parse_price(text: Any) -> tuple[str | None, str | None]:
    """``'€1.299,00'`` -> ``('1299.00', 'EUR')``: a plain decimal and an ISO currency."""
    if text is None:
        return None, None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return str(Decimal(str(text))), None
    s = str(text).strip()
    currency = None
    code = re.search(r"\b([A-Z]{3})\b", s)
    if code:
        currency = code.group(1)
    else:
        for symbol, iso in _CURRENCY_SYMBOLS.items():
            if symbol in s:
                currency = iso
                break
    m = re.search(r"\d[\d.,'\u00a0\u202f ]*", s)
    if not m:
        return None, currency
    num = re.sub(r"['\u00a0\u202f ]", "", m.group(0)).rstrip(".,")
    if "," in num and "." in num:
        dec = "," if num.rfind(",") > num.rfind(".") else "."
        thousands = "." if dec == "," else ","
        num = num.replace(thousands, "").replace(dec, ".")
    elif "," in num or "." in num:
        sep = "," if "," in num else "."
        head, _, tail = num.rpartition(sep)
        # One separator followed by exactly three digits is a thousands separator.
        if num.count(sep) > 1 or len(tail) == 3:
            num = num.replace(sep, "")
        else:
            num = head.replace(sep, "") + "." + tail
    try:
        return str(Decimal(num)), currency
    except InvalidOperation:
        return None, currency


def _text(el: Tag) -> str:
    return " ".join(el.get_text(" ", strip=True).split())


def extract_field(scope: Tag, spec: FieldSpec, page_url: str, is_url: bool) -> str | None:
    """Read one field inside ``scope``: the first attribute that has a usable value, or
    the element's text. URL fields are resolved; ``srcset`` values give the largest."""
    el = scope if spec.selector is None else scope.select_one(spec.selector)
    if el is None:
        return None
    if not spec.attrs:
        value = _text(el)
        return value or None
    for attr in spec.attrs:
        raw = el.get(attr)
        if isinstance(raw, list):
            raw = " ".join(raw)
        if not raw or not str(raw).strip():
            continue
        raw = str(raw).strip()
        if not is_url:
            return raw
        if attr.endswith("srcset"):
            raw = pick_srcset(raw) or ""
        url = resolve_url(page_url, raw)
        if url:
            return url
    return None


# --- structured data -------------------------------------------------------------------

def _types(obj: dict) -> set[str]:
    t = obj.get("@type", [])
    return {str(x).rsplit("/", 1)[-1] for x in (t if isinstance(t, list) else [t])}


def _walk_jsonld(obj: Any):
    if isinstance(obj, list):
        for item in obj:
            yield from _walk_jsonld(item)
    elif isinstance(obj, dict):
        yield obj
        for key in ("@graph", "mainEntity", "itemListElement", "item"):
            if key in obj:
                yield from _walk_jsonld(obj[key])


def jsonld_objects(soup: BeautifulSoup) -> list[dict]:
    """Every JSON-LD object on the page (``@graph`` and lists flattened); bad JSON skipped."""
    found = []
    for script in soup.find_all("script", type=re.compile(r"ld\+json", re.I)):
        try:
            data = json.loads(script.string or script.get_text() or "")
        except (json.JSONDecodeError, TypeError):
            continue
        found.extend(_walk_jsonld(data))
    return found


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _image_from_jsonld(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("contentUrl") or value.get("url")
    return value if isinstance(value, str) else None


def record_from_jsonld(obj: dict, page_url: str) -> ProductRecord:
    """A record from a schema.org ``Product`` object."""
    offers = _first(obj.get("offers"))
    price = currency = None
    if isinstance(offers, dict):
        spec = _first(offers.get("priceSpecification"))
        raw = offers.get("price", offers.get("lowPrice"))
        if raw is None and isinstance(spec, dict):
            raw = spec.get("price")
        price, sym = parse_price(raw)
        currency = offers.get("priceCurrency") or (spec or {}).get("priceCurrency") or sym
    name = obj.get("name")
    shop_id = obj.get("sku") or obj.get("productID") or obj.get("mpn")
    return ProductRecord(
        product_url=resolve_url(page_url, obj.get("url")) if isinstance(obj.get("url"), str)
        else None,
        image_url=resolve_url(page_url, _image_from_jsonld(obj.get("image"))),
        shop_id=str(shop_id) if shop_id not in (None, "") else None,
        title=" ".join(str(name).split()) if name else None,
        price=price,
        currency=str(currency) if currency else None,
    )


def opengraph(soup: BeautifulSoup, page_url: str) -> ProductRecord:
    """A record from OpenGraph / product meta tags."""
    meta: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        key = tag.get("property") or tag.get("name")
        if key and tag.get("content") and key not in meta:
            meta[str(key).lower()] = str(tag["content"]).strip()
    price, sym = parse_price(meta.get("product:price:amount") or meta.get("og:price:amount"))
    return ProductRecord(
        product_url=resolve_url(page_url, meta.get("og:url")),
        image_url=resolve_url(page_url, meta.get("og:image:secure_url") or meta.get("og:image")),
        title=meta.get("og:title"),
        price=price,
        currency=meta.get("product:price:currency") or meta.get("og:price:currency") or sym,
    )


# --- pages -----------------------------------------------------------------------------

def soup_of(html: str | bytes) -> BeautifulSoup:
    """Parse HTML with the stdlib parser (no extra dependency)."""
    return BeautifulSoup(html, "html.parser")


def _record_from_scope(scope: Tag, fields: dict[str, FieldSpec], attributes: dict[str, FieldSpec],
                       page_url: str) -> ProductRecord:
    def get(name: str) -> str | None:
        spec = fields.get(name)
        return extract_field(scope, spec, page_url, name in ("link", "image")) if spec else None

    price, sym = parse_price(get("price"))
    currency = get("currency")
    attrs = {}
    for key, spec in attributes.items():
        value = extract_field(scope, spec, page_url, is_url=False)
        if value:
            attrs[key] = value
    return ProductRecord(product_url=get("link"), image_url=get("image"), shop_id=get("id"),
                         title=get("title"), price=price,
                         currency=(currency.strip() if currency else None) or sym, attrs=attrs)


def parse_listing(html: str | bytes, page_url: str, profile: Profile) -> ListingPage:
    """Products and the next-page URL from one listing page."""
    soup = soup_of(html)
    records: list[ProductRecord] = []
    if profile.card:
        fields = dict(profile.listing_fields)
        for card in soup.select(profile.card):
            rec = _record_from_scope(card, fields, profile.listing_attributes, page_url)
            if "link" not in fields:
                a = card if card.name == "a" else card.find("a", href=True)
                rec.product_url = resolve_url(page_url, a.get("href")) if a else None
            if "image" not in fields:
                rec.image_url = extract_field(card, FieldSpec("img", DEFAULT_IMAGE_ATTRS),
                                              page_url, True)
            if rec.title is None:
                img = card.find("img", alt=True)
                rec.title = (img.get("alt") or "").strip() or None if img else None
            if rec.key():
                records.append(rec)
    else:
        for obj in jsonld_objects(soup):
            types = _types(obj)
            if "Product" in types:
                records.append(record_from_jsonld(obj, page_url))
            elif "ListItem" in types and isinstance(obj.get("url"), str):
                records.append(ProductRecord(product_url=resolve_url(page_url, obj["url"])))
        link = profile.listing_fields.get("link")
        if link and link.selector:
            for a in soup.select(link.selector):
                url = extract_field(a, FieldSpec(None, link.attrs), page_url, True)
                records.append(ProductRecord(product_url=url))
        if not records:
            og = opengraph(soup, page_url)
            if og.image_url:
                og.product_url = og.product_url or page_url
                records.append(og)
    seen: set[str] = set()
    unique = []
    for rec in records:
        key = rec.key()
        if key and key not in seen:
            seen.add(key)
            unique.append(rec)
    next_url = None
    if profile.next_selector:
        nxt = soup.select_one(profile.next_selector)
        if nxt is not None:
            next_url = resolve_url(page_url, nxt.get("href"))
    return ListingPage(unique, next_url)


def parse_product_page(html: str | bytes, page_url: str, profile: Profile) -> ProductRecord:
    """A record from a product page: profile selectors first, then JSON-LD, then OpenGraph."""
    soup = soup_of(html)
    rec = _record_from_scope(soup, profile.product_fields, profile.product_attributes, page_url)
    fallbacks = [record_from_jsonld(o, page_url) for o in jsonld_objects(soup)
                 if "Product" in _types(o)]
    fallbacks.append(opengraph(soup, page_url))
    for fb in fallbacks:
        fb.product_url = None  # the URL we fetched is the product's URL
        rec = fb.merged_with(rec)
    rec.product_url = page_url
    return rec


def catalog_id(rec: ProductRecord) -> str | None:
    """The product's catalog id: the shop's own id (selector, JSON-LD sku/productID),
    else the product URL's slug, else the image URL's slug. Never the row order."""
    return make_id(rec.shop_id) or slug_from_url(rec.product_url) or slug_from_url(rec.image_url)
