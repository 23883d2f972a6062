"""Pieces every page uses: product cards, the match badge, grids, the navbar.

Product cards are the hot path (24 per catalog page, k per product page), so they are
built directly in Dash's JSON wire format (`wire`): plain dicts that the browser receives
unchanged, several times cheaper than Component objects plus their JSON encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from .shop import Item

if TYPE_CHECKING:
    from .router import Page

HTML_NS = "dash_html_components"
DCC_NS = "dash_core_components"
WireComponent = dict[str, Any]
MATCH_SCALE = "0% is as alike as two typical products of this catalog, 100% identical."


def wire(component_type: str, namespace: str, **props: Any) -> WireComponent:
    """A component in Dash's JSON wire format, built without per-instance validation."""
    return {"type": component_type, "namespace": namespace, "props": props}


def div(children: Any = None, **props: Any) -> WireComponent:
    """html.Div in wire format."""
    return wire("Div", HTML_NS, children=children, **props)


def link(children: Any, href: str, **props: Any) -> WireComponent:
    """dcc.Link in wire format: client-side navigation, no page reload."""
    return wire("Link", DCC_NS, children=children, href=href, **props)


def similarity_display(
    score: float, rank: int, metric: str, best_score: float, baseline: float | None = None
) -> tuple[str, float, str]:
    """How a neighbour's score is shown: (badge text, bar fraction 0..1, explanation).

    Cosine scores are similarities: "92% match". With the catalog's `baseline` (the mean
    cosine between two of its products), 0% is a typical pair and 100% identical: CNN
    features of photos on white all score 0.95+, so raw cosines would read "99% match"
    for everything. Euclidean scores are distances, which mean nothing to a shopper, so
    the badge gives the rank and the bar closeness relative to the closest match.
    """
    if metric == "euclidean":
        fraction = 1.0 if score <= 0 else max(0.0, min(1.0, best_score / score))
        badge = "Closest match" if rank == 1 else f"#{rank} closest"
        explanation = (
            f"Euclidean distance {score:.3g} (lower is closer); "
            f"bar: closeness relative to the closest match ({fraction:.0%})"
        )
        return badge, fraction, explanation
    if baseline is not None and baseline < 1:
        fraction = max(0.0, min(1.0, (score - baseline) / (1 - baseline)))
        explanation = (
            f"cosine similarity {score:.3f}; 0% = as alike as two typical products of this "
            f"catalog ({baseline:.3f}), 100% = identical"
        )
        return f"{round(fraction * 100)}% match", fraction, explanation
    fraction = max(0.0, min(1.0, score))
    return f"{round(fraction * 100)}% match", fraction, f"cosine similarity {score:.3f}"


def product_card(item: Item, footer: list[WireComponent] | None = None) -> WireComponent:
    """A clickable card (thumbnail, title, price) linking to the product's page."""
    body = [
        div(item.title, className="product-title", title=item.title),
        div(item.price_text or "\u00a0", className="product-price"),
        *(footer or []),
    ]
    card = div(
        [
            # alt="": the title is the card's next line, so a screen reader says it once
            div(wire("Img", HTML_NS, src=item.thumb_url, alt="", loading="lazy"),
                className="product-thumb"),
            div(body, className="card-body p-2"),
        ],
        className="card product-card h-100",
    )
    return wire("Link", DCC_NS, id={"type": "product-card", "id": item.id}, href=item.href,
                className="product-link", children=card)


def similar_card(
    item: Item, score: float, rank: int, best: float, metric: str, baseline: float | None
) -> WireComponent:
    """A product card with its similarity badge and bar."""
    badge, fraction, explanation = similarity_display(score, rank, metric, best, baseline)
    bar = div(className="match-fill", style={"width": f"{fraction:.0%}"})
    footer = div(
        [wire("Span", HTML_NS, className="match-text", children=badge),
         div(bar, className="match-bar")],
        className="match", title=explanation,
    )
    return product_card(item, [footer])


def grid(
    cards: list[Any], cols: str = "row-cols-2 row-cols-sm-3 row-cols-md-4 row-cols-xl-6"
) -> WireComponent:
    """A responsive row of cards."""
    return div([div(card, className="col") for card in cards], className=f"row g-3 {cols}")


def navbar(pages: Sequence[Page], brand: str) -> dbc.Navbar:
    """The top bar: brand and one link per page that has a navbar label."""

    def text(page: Page) -> Any:
        if not page.short_label:
            return page.label
        return [html.Span(page.label, className="d-none d-sm-inline"),
                html.Span(page.short_label, className="d-sm-none", title=page.label)]

    links = [dbc.NavItem(dbc.NavLink(text(p), href=p.path, active="exact"))
             for p in pages if p.label]
    return dbc.Navbar(
        dbc.Container([
            dcc.Link([html.Span("◐", className="brand-mark", **{"aria-hidden": "true"}),
                      " lookalike"], href="/",
                     className="navbar-brand"),
            html.Span(brand, className="navbar-text small d-none d-md-inline"),
            dbc.Nav(links, className="ms-auto", navbar=True),
        ]),
        className="site-nav mb-4", color="#1d2130", dark=True,
        expand=True,  # three links fit on a phone: no hamburger menu needed
    )
