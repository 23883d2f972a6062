"""Structured data on a page -> product facts (pure), read by ``extruct``.

schema.org ``Product`` (and its ``Offer``) from JSON-LD, microdata and RDFa, all brought to
JSON-LD's shape; OpenGraph (``og:*``, ``product:*``) beside them. Prices in structured
data use ``.`` as the decimal mark; a stated sale price wins over the regular one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

PRODUCT_TYPES = {"Product", "ProductGroup", "IndividualProduct", "ProductModel", "SomeProducts",
                 "Book", "Vehicle", "Car"}
_RDFA_MARKERS = re.compile(rb"\s(?:typeof|vocab)\s*=", re.I)
_SALE_TYPES = ("SalePrice",)
_MAX_DEPTH = 6


@dataclass
class PageData:
    """Product objects (JSON-LD shape, best first) and the OpenGraph tags of one page."""

    products: list[dict[str, Any]] = field(default_factory=list)
    # Products and ItemList entries with a URL, in page order (what a listing lists)
    entries: list[dict[str, Any]] = field(default_factory=list)
    opengraph: dict[str, Any] = field(default_factory=dict)


def types_of(obj: dict[str, Any]) -> set[str]:
    """The schema.org type names of an object (``http://schema.org/Product`` -> ``Product``)."""
    t = obj.get("@type", [])
    return {re.split(r"[/#:]", str(x))[-1] for x in (t if isinstance(t, list) else [t])}


def first(value: Any) -> Any:
    """The first element of a list, or the value itself."""
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    return value


def _walk(obj: Any, depth: int = 0):
    if depth > _MAX_DEPTH:
        return
    if isinstance(obj, list):
        for item in obj:
            yield from _walk(item, depth + 1)
    elif isinstance(obj, dict):
        yield obj
        for key in ("@graph", "mainEntity", "itemListElement", "item", "hasVariant",
                    "mainEntityOfPage", "about"):
            if key in obj:
                yield from _walk(obj[key], depth + 1)


def _rdfa_to_jsonld(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """extruct's flat RDFa graph -> nested JSON-LD-shaped objects (schema.org only)."""
    by_id = {n.get("@id"): n for n in nodes if isinstance(n, dict)}

    def convert(node: dict[str, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {"@type": [str(t) for t in node.get("@type", [])]}
        for key, values in node.items():
            if not key.startswith(("http://schema.org/", "https://schema.org/")):
                continue
            name = key.rsplit("/", 1)[-1]
            items = []
            for v in values if isinstance(values, list) else [values]:
                if not isinstance(v, dict):
                    items.append(v)
                elif "@value" in v:
                    items.append(v["@value"])
                elif v.get("@id") in by_id and depth < _MAX_DEPTH \
                        and by_id[v["@id"]].get("@type"):
                    items.append(convert(by_id[v["@id"]], depth + 1))
                elif "@id" in v:
                    items.append(v["@id"])
            out[name] = items[0] if len(items) == 1 else items
        return out

    return [convert(n, 0) for n in by_id.values()
            if any("schema.org" in str(t) for t in n.get("@type", []))]


def _jsonld_scripts(raw: bytes) -> list[Any]:
    """Each JSON-LD script on its own (extruct drops them all when one is broken); JSON
    with comments or trailing commas is read as extruct does (jstyleson)."""
    import jstyleson
    import lxml.html

    try:
        tree = lxml.html.fromstring(raw)
    except (ValueError, lxml.etree.ParserError):
        return []
    found = []
    for script in tree.xpath('//script[contains(translate(@type, "JSONLD", "jsonld"), '
                             '"ld+json")]'):
        text = (script.text or "").strip()
        for loads in (lambda t: json.loads(t, strict=False), jstyleson.loads):
            try:
                found.append(loads(text))
                break
            except (ValueError, TypeError, IndexError):
                continue
    return found


def page_data(html: str | bytes, url: str) -> PageData:
    """All product objects and OpenGraph tags on a page; broken markup is skipped."""
    import extruct  # heavy-ish (lxml, rdflib): only when a page is parsed

    raw = html.encode("utf-8", "replace") if isinstance(html, str) else html
    syntaxes = ["microdata", "opengraph"]
    if _RDFA_MARKERS.search(raw):
        syntaxes.append("rdfa")  # the slow one (5 ms a page): only where RDFa is used
    try:
        data = extruct.extract(raw, base_url=url, syntaxes=syntaxes, uniform=True,
                               errors="ignore")
    except Exception:  # extruct raises on pages lxml cannot make a tree of
        return PageData()
    objects = [*_jsonld_scripts(raw), *data.get("microdata", []),
               *_rdfa_to_jsonld(data.get("rdfa", []))]
    out = PageData()
    for obj in (o for top in objects for o in _walk(top)):
        types = types_of(obj)
        if types & PRODUCT_TYPES:
            out.products.append(obj)
            out.entries.append(obj)
        elif "ListItem" in types and isinstance(obj.get("url"), str):
            out.entries.append(obj)
    for og in data.get("opengraph", []):
        for key, value in og.items():
            if not key.startswith("@"):
                out.opengraph.setdefault(key, value)
        if "@type" in og:
            out.opengraph.setdefault("og:type", og["@type"])
    return out


def image_of(value: Any) -> str | None:
    """A URL from a schema.org ``image`` (URL, list, ``ImageObject``)."""
    value = first(value)
    if isinstance(value, dict):
        value = first(value.get("contentUrl") or value.get("url") or value.get("@id"))
    return value.strip() if isinstance(value, str) and value.strip() else None


def offer_prices(product: dict[str, Any]) -> tuple[Any, Any, str | None]:
    """(sale price or None, regular price, currency) from a Product's offers; a
    ``priceSpecification`` of type ``SalePrice`` is the sale price, ``ListPrice`` and
    ``StrikethroughPrice`` are the regular one, an offer's own ``price`` is what it sells
    for."""
    offers = product.get("offers")
    offer_list = offers if isinstance(offers, list) else [offers]
    offer = next((o for o in offer_list if isinstance(o, dict)), None)
    if offer is None:
        return None, None, None
    currency = first(offer.get("priceCurrency"))
    price = first(offer.get("price"))
    if price is None:
        price = first(offer.get("lowPrice"))
    sale = None
    specs = offer.get("priceSpecification")
    for spec in specs if isinstance(specs, list) else [specs]:
        if not isinstance(spec, dict):
            continue
        kind = str(first(spec.get("priceType")) or "").rsplit("/", 1)[-1]
        value = first(spec.get("price"))
        currency = currency or first(spec.get("priceCurrency"))
        if kind in _SALE_TYPES:
            sale = value
        elif price is None:  # a list price only when the offer states no price of its own
            price = value
    if sale is not None and price is not None and str(sale) == str(price):
        sale = None
    return sale, price, str(currency) if currency else None


def strip_site_name(title: str, site_name: str | None) -> str:
    """``"Red dress | Shop"`` -> ``"Red dress"`` when the suffix (or prefix) is the site's
    name (OpenGraph titles often carry it)."""
    if not site_name:
        return title
    name = re.escape(site_name.strip())
    stripped = re.sub(rf"\s*[|\-–—:·•]+\s*{name}\s*$", "", title, flags=re.I)
    stripped = re.sub(rf"^\s*{name}\s*[|\-–—:·•]+\s*", "", stripped, flags=re.I)
    return stripped.strip() or title
