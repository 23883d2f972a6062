"""Pure parsing: HTML or JSON in, product records out. No network, no disk.

Listing pages yield one :class:`ProductRecord` per product card (or, without a card
selector, per schema.org ``Product``/``ItemList`` entry, or per product link); JSON feeds
one per item (JMESPath field paths); product pages refine a record from profile selectors,
then structured data (JSON-LD, microdata, RDFa: :mod:`scraper.structured`), then
OpenGraph. Prices through :mod:`scraper.money`, ``srcset`` through :mod:`scraper.srcset`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

from pipeline.catalog import make_id
from scraper.money import currency_code
from scraper.money import parse_price as _parse_price
from scraper.profile import DEFAULT_IMAGE_ATTRS, FieldSpec, Profile
from scraper.srcset import pick_srcset
from scraper.structured import (
    PageData,
    first,
    image_of,
    offer_prices,
    page_data,
    strip_site_name,
)

__all__ = ["ListingPage", "ProductRecord", "catalog_id", "make_id", "parse_feed",
           "parse_listing", "parse_price", "parse_product_page", "pick_srcset",
           "resolve_url", "slug_from_url"]

_GENERIC_STEMS = {"", "index", "product", "products", "item", "items", "p", "view", "detail",
                  "details", "show", "dp", "gp", "pd", "buy", "shop"}
# Query parameters that track a visit and never name a product.
_TRACKING = re.compile(r"^(utm_.*|ref|ref_|refsrc|gclid|fbclid|msclkid|mc_[a-z]+|_ga|"
                       r"srsltid|sr|qid|keywords|crid|sprefix|psc|spm|scm|from|source|"
                       r"_pos|_sid|_ss|trk|tag)$", re.I)
_PAGE_CURRENCY = re.compile(
    r"""(?:priceCurrency["']?\s*(?::|content=)\s*["']|(?:og|product):price:currency["']"""
    r"""\s+content=["'])([A-Z]{3})["']""")


class FeedError(ValueError):
    """A feed page that is not the JSON the profile describes."""


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
    sale_price: str | None = None  # set when the page states a sale price (then = price)

    def key(self) -> str | None:
        """The manifest key: the product page URL, else the image URL."""
        if self.product_url:
            return self.product_url
        return f"image:{self.image_url}" if self.image_url else None

    def merged_with(self, newer: ProductRecord) -> ProductRecord:
        """This record with every field the newer one has (product page beats listing)."""
        sale = newer.sale_price or self.sale_price
        if sale and sale == newer.sale_price:
            price, currency = sale, newer.currency or self.currency
        elif sale:
            price, currency = sale, self.currency or newer.currency
        else:
            price = newer.price or self.price
            currency = (newer.currency if newer.price else self.currency) \
                or newer.currency or self.currency
        return ProductRecord(
            product_url=self.product_url or newer.product_url,
            image_url=newer.image_url or self.image_url,
            shop_id=newer.shop_id or self.shop_id,
            title=newer.title or self.title,
            price=price,
            currency=currency,
            attrs={**self.attrs, **{k: v for k, v in newer.attrs.items() if v}},
            sale_price=sale,
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the manifest."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProductRecord:
        """Inverse of :meth:`to_json` (unknown keys of other versions ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


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


def slug_from_url(url: str | None) -> str | None:
    """An id from a product URL: the last meaningful path segment without its extension
    (``/dp/B0123/ref=sr_1_1`` -> ``B0123``), plus the query's values when the segment is
    generic like ``product.php`` (tracking parameters such as ``utm_*`` ignored)."""
    if not url:
        return None
    url = url.removeprefix("image:")
    parts = urlsplit(url)
    # Amazon-style "/ref=..." and matrix ";param" segments say how a visitor came.
    segments = [s.split(";")[0] for s in parts.path.split("/")]
    segments = [s for s in segments if s and "=" not in s]
    stem = PurePosixPath(segments[-1]).stem if segments else ""
    values = [v for k, v in parse_qsl(parts.query) if v and not _TRACKING.match(k)]
    if stem.lower() in _GENERIC_STEMS and values:
        stem = "-".join(([stem] if stem else []) + values)
    elif stem.lower() in _GENERIC_STEMS and len(segments) > 1:
        stem = f"{PurePosixPath(segments[-2]).stem}-{stem}".strip("-")
    return make_id(stem)


def parse_price(text: Any, hint: str | None = None,
                structured: bool = False) -> tuple[str | None, str | None]:
    """``'€1.299,00'`` -> ``('1299.00', 'EUR')``; see :func:`scraper.money.parse_price`."""
    return _parse_price(text, hint, structured)


def page_currency(html: str | bytes) -> str | None:
    """A currency the page states in its structured data, as a hint for its prices."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    m = _PAGE_CURRENCY.search(text)
    return m.group(1) if m else None


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

def _text_of(value: Any) -> str | None:
    value = first(value)
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    if value is None or isinstance(value, dict | list):
        return None
    text = " ".join(str(value).split())
    return text or None


def record_from_product(obj: dict[str, Any], page_url: str,
                        hint: str | None = None) -> ProductRecord:
    """A record from a schema.org ``Product`` (JSON-LD shape; microdata and RDFa are
    brought to it): the sale price when one is stated, prices read with ``.`` decimals."""
    sale, regular, currency = offer_prices(obj)
    if regular is None and sale is None:
        variants = obj.get("hasVariant")
        variant = first(variants) if variants else None
        if isinstance(variant, dict):
            sale, regular, currency = offer_prices(variant)
    hint = currency or hint
    sale_price, sale_cur = _parse_price(sale, hint, structured=True)
    price, cur = _parse_price(regular, hint, structured=True)
    shop_id = next((_text_of(obj.get(k)) for k in ("sku", "productID", "mpn")
                    if _text_of(obj.get(k))), None)
    url = _text_of(obj.get("url"))
    return ProductRecord(
        product_url=resolve_url(page_url, url) if url else None,
        image_url=resolve_url(page_url, image_of(obj.get("image"))),
        shop_id=shop_id,
        title=_text_of(obj.get("name")),
        price=sale_price or price,
        currency=currency_code(currency) or (sale_cur if sale_price else cur),
        sale_price=sale_price,
    )


def opengraph_is_product(og: dict[str, Any]) -> bool:
    """Whether the page's OpenGraph describes a product (not the site)."""
    kind = str(first(og.get("og:type")) or "").lower()
    return "product" in kind or any(k.startswith("product:") for k in og)


def record_from_opengraph(og: dict[str, Any], page_url: str,
                          hint: str | None = None) -> ProductRecord:
    """A record from OpenGraph / product meta tags; the title loses the site's name."""
    def get(*keys: str) -> str | None:
        for key in keys:
            value = _text_of(og.get(key))
            if value:
                return value
        return None

    currency = get("product:price:currency", "og:price:currency")
    sale, sale_cur = _parse_price(get("product:sale_price:amount", "og:sale_price:amount"),
                                  get("product:sale_price:currency") or currency or hint,
                                  structured=True)
    price, cur = _parse_price(get("product:price:amount", "og:price:amount"),
                              currency or hint, structured=True)
    title = get("og:title")
    return ProductRecord(
        product_url=resolve_url(page_url, get("og:url")),
        image_url=resolve_url(page_url, get("og:image:secure_url", "og:image:url",
                                            "og:image")),
        title=strip_site_name(title, get("og:site_name")) if title else None,
        price=sale or price,
        currency=sale_cur if sale else cur,
        sale_price=sale,
    )


def main_product(products: list[dict[str, Any]], page_url: str) -> dict[str, Any] | None:
    """The page's own product among those marked up (not a related-products carousel):
    the one whose URL is the page's, else the first with a name."""
    page = resolve_url(page_url, page_url)
    for obj in products:
        url = _text_of(obj.get("url"))
        if url and resolve_url(page_url, url) == page:
            return obj
    return next((o for o in products if _text_of(o.get("name"))), products[0] if products
                else None)


# --- pages -----------------------------------------------------------------------------

def soup_of(html: str | bytes) -> BeautifulSoup:
    """Parse HTML with the stdlib parser (no extra dependency)."""
    return BeautifulSoup(html, "html.parser")


def _record_from_scope(scope: Tag, fields: dict[str, FieldSpec], attributes: dict[str, FieldSpec],
                       page_url: str, hint: str | None = None) -> ProductRecord:
    def get(name: str) -> str | None:
        spec = fields.get(name)
        return extract_field(scope, spec, page_url, name in ("link", "image")) if spec else None

    shown = get("currency")  # "€" as the page shows it: a hint, stored as its ISO code
    hint = (currency_code(shown, hint) if shown else None) or hint
    sale, sale_cur = _parse_price(get("sale_price"), hint)
    price, cur = _parse_price(get("price"), hint)
    attrs = {}
    for key, spec in attributes.items():
        value = extract_field(scope, spec, page_url, is_url=False)
        if value:
            attrs[key] = value
    return ProductRecord(product_url=get("link"), image_url=get("image"), shop_id=get("id"),
                         title=get("title"), price=sale or price,
                         currency=sale_cur if sale else cur, attrs=attrs, sale_price=sale)


def _unique(records: list[ProductRecord]) -> list[ProductRecord]:
    seen: set[str] = set()
    unique = []
    for rec in records:
        key = rec.key()
        if key and key not in seen:
            seen.add(key)
            unique.append(rec)
    return unique


def parse_listing(html: str | bytes, page_url: str, profile: Profile) -> ListingPage:
    """Products and the next-page URL from one listing page."""
    soup = soup_of(html)
    hint = profile.currency or page_currency(html)
    records: list[ProductRecord] = []
    if profile.card:
        fields = dict(profile.listing_fields)
        for card in soup.select(profile.card):
            rec = _record_from_scope(card, fields, profile.listing_attributes, page_url, hint)
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
        data = page_data(html, page_url)
        records += [record_from_product(o, page_url, hint) if o in data.products
                    else ProductRecord(product_url=resolve_url(page_url, o["url"]))
                    for o in data.entries]
        link = profile.listing_fields.get("link")
        if link and link.selector:
            for a in soup.select(link.selector):
                url = extract_field(a, FieldSpec(None, link.attrs), page_url, True)
                records.append(ProductRecord(product_url=url))
        if not records:
            og = record_from_opengraph(data.opengraph, page_url, hint)
            if og.image_url:
                og.product_url = og.product_url or page_url
                records.append(og)
    next_url = None
    if profile.next_selector:
        nxt = soup.select_one(profile.next_selector)
        if nxt is not None:
            next_url = resolve_url(page_url, nxt.get("href"))
    return ListingPage(_unique(records), next_url)


def parse_product_page(html: str | bytes, page_url: str, profile: Profile) -> ProductRecord:
    """A record from a product page: profile selectors, then structured data (JSON-LD,
    microdata, RDFa), then OpenGraph; a sale price stated by any of them wins. A site-wide
    OpenGraph image (``og:type`` not a product) is not used when the page marks up its
    product: a shop's share logo is not a product photo."""
    soup = soup_of(html)
    hint = profile.currency or page_currency(html)
    rec = _record_from_scope(soup, profile.product_fields, profile.product_attributes,
                             page_url, hint)
    data: PageData = page_data(html, page_url)
    og = record_from_opengraph(data.opengraph, page_url, hint)
    main = main_product(data.products, page_url)
    if main is not None and not opengraph_is_product(data.opengraph):
        og.image_url = None
    merged = og
    if main is not None:
        merged = og.merged_with(record_from_product(main, page_url, hint))
    merged.product_url = None  # the URL we fetched is the product's URL
    rec = merged.merged_with(rec)
    rec.product_url = page_url
    return rec


def _feed_value(item: Any, expr: str | None, fmt: str | None) -> str | None:
    import jmespath

    if expr is None:
        return None
    value = first(jmespath.search(expr, item))
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    text = str(value).strip() if not isinstance(value, float | int) or isinstance(value, bool) \
        else value
    if fmt:
        return fmt.replace("{}", str(text))
    return text  # type: ignore[return-value]


def _next_feed_url(url: str, template: str) -> str | None:
    """The next numbered page of a ``{page}`` feed URL."""
    pattern = re.escape(template).replace(re.escape("{page}"), r"(\d+)")
    m = re.fullmatch(pattern, url)
    if not m:
        return None
    return template.replace("{page}", str(int(m.group(1)) + 1))


def parse_feed(body: bytes | str, page_url: str, profile: Profile,
               next_link: str | None = None) -> ListingPage:
    """Products from one page of a JSON feed (see :class:`~scraper.profile.FeedSpec`): one
    record per item; the next page is the numbered one (while items keep coming), the
    ``next`` field path, or the response's ``Link: rel="next"``."""
    import jmespath

    feed = profile.feed
    assert feed is not None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"not JSON: {str(exc)[:120]}") from None
    items = jmespath.search(feed.items, data)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        items = []
    hint = profile.currency
    records = []
    for item in items:
        def get(name: str, item: Any = item) -> Any:
            return _feed_value(item, feed.fields.get(name), feed.formats.get(name))

        shown = get("currency")
        cur_hint = (currency_code(str(shown), hint) if shown else None) or hint
        sale, sale_cur = _parse_price(get("sale_price"), cur_hint, structured=True)
        price, cur = _parse_price(get("price"), cur_hint, structured=True)
        link, image = get("link"), get("image")
        attrs = {k: str(v) for k, expr in feed.attributes.items()
                 if (v := _feed_value(item, expr, None)) is not None}
        title = get("title")
        shop_id = get("id")
        rec = ProductRecord(
            product_url=resolve_url(page_url, str(link)) if link else None,
            image_url=resolve_url(page_url, str(image)) if image else None,
            shop_id=str(shop_id) if shop_id is not None else None,
            title=" ".join(str(title).split()) if title else None,
            price=sale or price, currency=sale_cur if sale else cur, attrs=attrs,
            sale_price=sale)
        if rec.key():
            records.append(rec)
    next_url = None
    if items:
        if "{page}" in feed.url:
            next_url = _next_feed_url(page_url, feed.url)
        elif feed.next:
            nxt = _feed_value(data, feed.next, None)
            next_url = resolve_url(page_url, str(nxt)) if nxt else None
        else:
            next_url = next_link
    return ListingPage(_unique(records), next_url)


def catalog_id(rec: ProductRecord) -> str | None:
    """The product's catalog id: the shop's own id (selector, JSON-LD sku/productID),
    else the product URL's slug, else the image URL's slug. Never the row order."""
    return make_id(rec.shop_id) or slug_from_url(rec.product_url) or slug_from_url(rec.image_url)
