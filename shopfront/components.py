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

from pipeline.precomputed import score_percentile

from .shop import Item

if TYPE_CHECKING:
    from .router import Page

HTML_NS = "dash_html_components"
DCC_NS = "dash_core_components"
WireComponent = dict[str, Any]
MATCH_BANDS: tuple[tuple[float, str], ...] = (
    (80.0, "Very close match"), (20.0, "Close match"), (0.0, "Loose match"))
WEAK_BELOW = 20.0  # percentile under which a match is marked as loose
MATCH_EXPLANATION = ("Closest first. “Very close” matches are among the closest fifth of "
                     "this shop’s recommendations, “loose” ones among the furthest fifth.")
UNCALIBRATED_EXPLANATION = "Closest first, by how alike the photos look."


def wire(component_type: str, namespace: str, **props: Any) -> WireComponent:
    """A component in Dash's JSON wire format, built without per-instance validation."""
    return {"type": component_type, "namespace": namespace, "props": props}


def div(children: Any = None, **props: Any) -> WireComponent:
    """html.Div in wire format."""
    return wire("Div", HTML_NS, children=children, **props)


def link(children: Any, href: str, **props: Any) -> WireComponent:
    """dcc.Link in wire format: client-side navigation, no page reload."""
    return wire("Link", DCC_NS, children=children, href=href, **props)


def match_label(score: float, quantiles: Sequence[float], metric: str = "cosine"
                ) -> tuple[str, bool] | None:
    """The shopper's word for a match, from the row's calibration: (label, weak).

    The score's place among all the row's scores (`score_quantiles`) picks a band of
    MATCH_BANDS; bench/bench_rows.py shows that articleType agreement rises band by band
    on real photos (about 35%, 57% and 80% on fashion-small-2k). Weak matches (the lowest
    band) are marked. Without calibration (a version-1 folder) there is no label: raw
    similarities carry no signal a shopper could use.
    """
    pct = score_percentile(score, quantiles)
    if pct is None:
        return None
    if metric == "euclidean":  # distances: smaller is closer
        pct = 100.0 - pct
    label = next(text for floor, text in MATCH_BANDS if pct >= floor)
    return label, pct < WEAK_BELOW


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


def similar_card(item: Item, label: tuple[str, bool] | None) -> WireComponent:
    """A product card with its calibrated match label (`match_label`), if any."""
    if label is None:
        return product_card(item)
    text, weak = label
    footer = div(wire("Span", HTML_NS, className="match-text", children=text),
                 className="match match-weak" if weak else "match")
    return product_card(item, [footer])


def recommendation_row(
    title: str, pairs: Sequence[tuple[Item, float]], quantiles: Sequence[float], metric: str,
    row_id: str, heading_id: str,
) -> WireComponent:
    """One row of look-alikes: heading, a one-line explanation, and a strip of cards that
    scrolls sideways (a grid on wide screens)."""
    cards = [similar_card(item, match_label(score, quantiles, metric)) for item, score in pairs]
    explanation = MATCH_EXPLANATION if len(quantiles) >= 2 else UNCALIBRATED_EXPLANATION
    return wire("Section", HTML_NS, className="rec-row mb-4",
                **{"aria-labelledby": heading_id}, children=[
        wire("H2", HTML_NS, children=title, className="h5 mb-1", id=heading_id),
        wire("P", HTML_NS, children=explanation, className="text-muted small mb-2"),
        div([div(card, className="rec-cell") for card in cards], className="rec-strip",
            id=row_id),
    ])


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
