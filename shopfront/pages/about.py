"""About page (`/about`): how the recommendations were built, from meta.json."""

from __future__ import annotations

import contextlib
from datetime import datetime

import dash_bootstrap_components as dbc
from dash import html

from ..router import Head, Page, View
from ..shop import Shop


def about_rows(shop: Shop) -> list[tuple[str, str]]:
    """(label, value) pairs describing how the recommendations were built."""
    meta = shop.meta
    model = meta.get("model") or {}
    metric_text = {
        "cosine": "cosine similarity (higher is closer)",
        "euclidean": "Euclidean distance (lower is closer)",
    }.get(shop.metric, shop.metric)
    created = str(meta.get("created_at") or "")
    with contextlib.suppress(ValueError):  # not ISO 8601: show it as written
        created = datetime.fromisoformat(created.replace("Z", "+00:00")).strftime(
            "%Y-%m-%d %H:%M %Z").strip()
    projection = meta.get("projection")
    if isinstance(projection, dict):
        projection = projection.get("method") or projection.get("name") or str(projection)
    return [
        ("Products", f"{shop.n_products:,}"),
        ("Model", str(model.get("name") or "unknown")),
        ("Layer", str(model.get("layer") or "unknown")),
        ("Weights", str(model.get("weights") or "unknown")),
        ("Feature size", str(model.get("dim") or "unknown")),
        ("Similarity", metric_text),
        ("Similar products per item (k)", str(meta.get("k") or "unknown")),
        ("Grouped by", str(meta.get("group_by") or "none (whole catalog)")),
        ("2-D map", str(projection or "unknown")),
        ("Built", created or "unknown"),
    ]


def about_view(shop: Shop, rest: str = "", search: str = "") -> View:
    """The page for `/about`."""
    table = html.Table(
        html.Tbody([html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in about_rows(shop)]),
        className="table about-table mb-0", id="about-table",
    )
    intro = ("Every product photo was run through an image model; products whose image "
             "features are closest are shown as look-alikes. Nothing here uses text or "
             "purchase data: it is all in the pictures.")
    layout = html.Div(
        dbc.Row(dbc.Col([html.H1("How it works", className="h3"),
                         html.P(intro, className="text-muted"),
                         dbc.Card(table, body=True)], lg=8)),
        className="about-page",
    )
    return View(layout, Head("How it works", intro))


PAGE = Page("/about", "About", about_view)
