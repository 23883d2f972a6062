"""Product page (`/product/<id>`): big image, details, shop link and its look-alikes.

Built in wire format: the most requested page, and its cost stays O(k).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ..components import HTML_NS, MATCH_SCALE, div, grid, link, similar_card, wire
from ..query import CatalogQuery, catalog_query_string
from ..router import Head, Page, View
from ..shop import Item, Shop
from ..text import attribute_label
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


def product_layout(shop: Shop, item: Item, neighbours: list[tuple[Item, float]]) -> Any:
    """The product page's layout."""
    best = neighbours[0][1] if neighbours else 0.0
    similar = [similar_card(other, score, rank, best, shop.metric, shop.baseline)
               for rank, (other, score) in enumerate(neighbours, start=1)]
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
    if item.product_url:
        shop_link = ["View in shop ", hidden_arrow("↗"),
                     wire("Span", HTML_NS, children=" (opens in a new tab)",
                          className="visually-hidden")]
        actions.append(wire(
            "A", HTML_NS, children=shop_link, href=item.product_url, target="_blank",
            rel="noopener noreferrer", className="btn btn-primary btn-lg me-2",
            id="product-shop-link",
        ))
    actions.append(link([hidden_arrow("←"), " Back to catalog"], "/",
                        className="btn btn-outline-secondary"))
    if shop.metric == "euclidean":
        how = ("Ranked by Euclidean distance between image features (lower is closer); "
               "the bar shows closeness relative to the closest match.")
    else:
        how = f"Ranked by cosine similarity between image features: {MATCH_SCALE}"
    hero = div(
        [
            div(div(wire("Img", HTML_NS, src=item.thumb_url, alt=item.title, id="product-image"),
                    className="product-hero"), className="col-md-5"),
            div([breadcrumb(shop, attrs),
                 wire("H1", HTML_NS, children=item.title, id="product-title", className="h2"),
                 div(item.price_text, className="product-hero-price mb-3"),
                 div(chips, className="chips mb-4"),
                 div(actions)],
                className="col-md-7 pt-md-3"),
        ],
        className="row g-4 mb-5 align-items-start",
    )
    return div(
        [
            hero,
            wire("H2", HTML_NS, children="Looks like this", className="h4 mb-1"),
            wire("P", HTML_NS, children=how, className="text-muted small mb-3"),
            div(grid(similar, "row-cols-2 row-cols-sm-3 row-cols-md-4 row-cols-xl-5")
                if similar
                else wire("P", HTML_NS, children="No similar products were computed for this one."),
                id="similar-products"),
        ],
        className="product-page",
        id={"type": "product-page", "id": item.id},
    )


def product_view(shop: Shop, rest: str, search: str = "") -> View:
    """The page for `/product/<id>` (the 404 view for an unknown id)."""
    product_id = unquote(rest.strip("/"))
    found = shop.neighbours(product_id)
    if found is None:
        shown = product_id if len(product_id) <= 80 else product_id[:80] + "…"
        return not_found_view(shop, f"We couldn't find a product with the id “{shown}”.")
    item, neighbours = found
    head = Head(item.title, product_description(item), item.thumb_url)
    return View(product_layout(shop, item, neighbours), head)


PAGE = Page("/product/", None, product_view)
