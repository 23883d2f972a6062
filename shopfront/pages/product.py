"""Product page (`/product/<id>`): big image, details, shop link and its look-alikes.

Built in wire format: the most requested page, and its cost stays O(k). Each product has
one URL, `text.product_href(id)`; the path is decoded exactly once, and other spellings
of a product's URL (`/product//ID`, `/product/ID/`, `%4C` for `L`) redirect to it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from ..components import HTML_NS, div, link, recommendation_row, wire
from ..query import CatalogQuery, catalog_query_string
from ..router import Head, Page, View
from ..shop import Item, ProductRow, Shop
from ..text import attribute_label, product_href, shop_link
from .not_found import not_found_view


def breadcrumb(shop: Shop, attrs: dict[str, str]) -> dict[str, Any]:
    """"Catalog › Men › Tshirts": each step links to the catalog filtered down to it."""
    steps: list[Any] = [link("Catalog", "/")]
    filters: list[tuple[str, tuple[str, ...]]] = []
    for facet in shop.facets[:2]:
        value = attrs.get(facet.name)
        if not value:
            continue
        filters.append((facet.name, (value,)))
        steps += [wire("Span", HTML_NS, children="›", className="mx-2", **{"aria-hidden": "true"}),
                  link(value, "/" + catalog_query_string(CatalogQuery(filters=tuple(filters))))]
    return wire("Nav", HTML_NS, children=steps, className="crumbs small mb-2",
                **{"aria-label": "breadcrumb"})


def hidden_arrow(arrow: str) -> dict[str, Any]:
    """An arrow drawn for the eye only (a screen reader would read "north east arrow")."""
    return wire("Span", HTML_NS, children=arrow, **{"aria-hidden": "true"})


def product_description(item: Item) -> str:
    """One sentence for search engines and link previews."""
    details = ", ".join(v for v in item.attrs.values() if v)[:160]
    price = f" {item.price_text}." if item.price_text else ""
    return f"{item.title}.{price} {details}".strip() + " See products that look like it."


def row_ids(position: int, key: str) -> tuple[str, str]:
    """(strip id, heading id) of a row: the first is `similar-products` ("Find similar"
    links to it)."""
    safe = "".join(c if c.isalnum() else "-" for c in key)
    return ("similar-products" if position == 0 else f"row-{safe}", f"row-title-{safe}")


def product_layout(shop: Shop, item: Item, rows: list[ProductRow]) -> Any:
    """The product page: a compact hero (photo, title, price, details, shop link) and the
    recommendation rows right under it, so the first row is on a desktop's first screen."""
    facet_names = {f.name for f in shop.facets}
    attrs = item.attrs
    chips = []
    for name, value in attrs.items():
        if not value:
            continue
        content = [wire("Span", HTML_NS, children=attribute_label(name), className="chip-name"),
                   value]
        if name in facet_names:
            query = CatalogQuery(filters=((name, (value,)),))
            chips.append(link(content, "/" + catalog_query_string(query), className="chip"))
        else:
            chips.append(wire("Span", HTML_NS, children=content, className="chip"))
    actions: list[Any] = []
    shop_url = shop_link(item.product_url)  # a javascript: or data: URL is left out
    if shop_url:
        label = ["View in shop ", hidden_arrow("↗"),
                 wire("Span", HTML_NS, children=" (opens in a new tab)",
                      className="visually-hidden")]
        actions.append(wire(
            "A", HTML_NS, children=label, href=shop_url, target="_blank",
            rel="noopener noreferrer", className="btn btn-primary btn-lg me-2",
            id="product-shop-link",
        ))
    actions.append(link([hidden_arrow("←"), " Back to catalog"], "/",
                        className="btn btn-outline-secondary"))
    hero = div(
        [
            div(div(wire("Img", HTML_NS, src=item.thumb_url, alt=item.title, id="product-image"),
                    className="product-hero"), className="col-md-4 col-lg-3"),
            div([breadcrumb(shop, attrs),
                 wire("H1", HTML_NS, children=item.title, id="product-title", className="h3"),
                 div(item.price_text, className="product-hero-price mb-2"),
                 div(chips, className="chips mb-3"),
                 div(actions)],
                className="col-md-8 col-lg-9"),
        ],
        className="row g-3 mb-4 align-items-start",
    )
    shown = [recommendation_row(r.spec.title, r.pairs, r.spec.quantiles, shop.metric,
                                *row_ids(r.spec.position, r.spec.key)) for r in rows]
    if not shown:
        shown = [div(wire("P", HTML_NS, children="No similar products were computed for this one."),
                     id="similar-products")]
    return div(
        [hero, *shown],
        className="product-page",
        id={"type": "product-page", "id": item.id},
    )


def decoded_id(rest: str) -> str | None:
    """The product id in the rest of a percent-encoded path, decoded once; None if it
    is not UTF-8."""
    try:
        return unquote_to_bytes(rest).decode("utf-8")
    except UnicodeDecodeError:
        return None


def product_view(shop: Shop, rest: str, search: str = "") -> View:
    """The page for `/product/<id>`, `rest` still percent-encoded (the 404 view for an
    unknown id). Another spelling of a product's URL gets its page with a redirect to
    the product's own URL in the head (`Head.location`)."""
    product_id = decoded_id(rest)
    found = shop.product_rows(product_id) if product_id else None
    if found is None and product_id and product_id.strip("/") != product_id:
        found = shop.product_rows(product_id.strip("/")) if product_id.strip("/") else None
    if found is None:
        shown = product_id or rest
        shown = shown if len(shown) <= 80 else shown[:80] + "…"
        return not_found_view(shop, f"We couldn't find a product with the id “{shown}”.")
    item, rows = found
    canonical = product_href(item.id)
    location = None
    if f"{PAGE.path}{rest}" != canonical:
        location = canonical + (f"?{search.lstrip('?')}" if search.lstrip("?") else "")
    head = Head(item.title, product_description(item), item.thumb_url,
                status=308 if location else 200, location=location)
    return View(product_layout(shop, item, rows), head)


PAGE = Page("/product/", None, product_view)
