"""Explore page (`/explore`): the catalog's 2-D map, coloured by an attribute.

The figure is a plain dict (no plotly.graph_objects: faster and lighter), of an even
sample of at most `MAP_POINTS` products, and is cached only for real facets, so no
request can make the cache grow.
"""

from __future__ import annotations

import html as html_text
from collections import Counter
from functools import lru_cache
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, dcc, html, no_update

from ..router import Head, Page, View
from ..shop import Shop
from ..text import attribute_label

MAX_LEGEND_VALUES = 12  # more values than this are lumped into "other"
SCATTERGL_FROM = 5000  # WebGL scatter above this many points, SVG below


def explore_figure(shop: Shop, attr: str | None) -> dict[str, Any]:
    """The map's figure: one trace per value of `attr` (a facet name), or one trace."""
    points = shop.map_points(attr)
    groups: dict[str, list[int]] = {}
    if attr:
        counts = Counter(value or "(none)" for _, value in points)
        keep = {v for v, _ in counts.most_common(MAX_LEGEND_VALUES)}
        for i, (_, value) in enumerate(points):
            value = value or "(none)"
            groups.setdefault(value if value in keep else "other", []).append(i)
        order = sorted(groups, key=lambda v: (v == "other", -len(groups[v]), v))
    else:
        groups = {"products": list(range(len(points)))}
        order = ["products"]
    trace_type = "scattergl" if len(points) >= SCATTERGL_FROM else "scatter"
    traces = []
    for value in order:
        items = [points[i][0] for i in groups[value]]
        traces.append({
            "type": trace_type,
            "x": [it.xy[0] for it in items],  # type: ignore[index]
            "y": [it.xy[1] for it in items],  # type: ignore[index]
            "mode": "markers",
            "name": f"{value} ({len(items):,})",
            "customdata": [it.id for it in items],
            # Plotly renders a few HTML tags in hover text: escape scraped titles.
            "text": [html_text.escape(it.title)
                     + (f"<br>{html_text.escape(it.price_text)}" if it.price_text else "")
                     for it in items],
            "hovertemplate": "%{text}<extra>" + html_text.escape(value) + "</extra>",
            "marker": {"size": 7 if len(points) < 2000 else 4, "opacity": 0.8},
        })
    layout = {
        "template": {"layout": {"paper_bgcolor": "white", "plot_bgcolor": "white"}},
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "height": 620,
        # below the map: a long legend on top would run under Plotly's toolbar
        "legend": {"itemsizing": "constant", "orientation": "h", "x": 0, "y": 0,
                   "yanchor": "top", "title": {"text": attribute_label(attr) if attr else ""}},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "hovermode": "closest",
        "dragmode": "pan",
        "uirevision": attr or "",
    }
    return {"data": traces, "layout": layout}


@lru_cache(maxsize=8)
def cached_figure(shop: Shop, attr: str | None) -> dict[str, Any]:
    """explore_figure, cached; callers pass only real facet names (or None)."""
    return explore_figure(shop, attr)


def chosen_attribute(shop: Shop, attr: Any) -> str | None:
    """`attr` if it is a facet of this shop, else the first facet (None if there are none)."""
    names = [f.name for f in shop.facets]
    if isinstance(attr, str) and attr in names:
        return attr
    return names[0] if names else None


def explore_view(shop: Shop, rest: str = "", search: str = "") -> View:
    """The page for `/explore`."""
    names = [f.name for f in shop.facets]
    attr = chosen_attribute(shop, None)
    figure = cached_figure(shop, attr)
    shown = sum(len(trace["x"]) for trace in figure["data"])
    count = (f"{shop.n_mapped:,} products" if shown == shop.n_mapped
             else f"{shown:,} of {shop.n_mapped:,} products")
    layout = html.Div(
        [
            html.H1("Explore the catalog", className="h3 mb-1"),
            html.P("Each dot is a product; products that look alike sit close together. "
                   "Hover to see one, click to open it.", className="text-muted"),
            dbc.Row(
                [
                    dbc.Col(html.Label("Colour by", htmlFor="explore-colour",
                                       className="col-form-label"), width="auto"),
                    dbc.Col(dbc.Select(id="explore-colour",
                                       options=[{"label": attribute_label(n), "value": n}
                                                for n in names], value=attr),
                            xs=8, md=3),
                    dbc.Col(html.Span(count, className="text-muted small"), width="auto"),
                ],
                className="g-2 mb-2 align-items-center",
            ) if names else None,
            dbc.Card(
                dcc.Graph(id="explore-graph", figure=figure,
                          config={"displaylogo": False, "scrollZoom": True,
                                  "modeBarButtonsToRemove": ["lasso2d", "select2d"]}),
                body=True, className="p-1",
            ),
        ],
        className="explore-page",
    )
    return View(layout, Head("Explore the catalog",
                             "A map of the catalog: products that look alike sit together."))


def clicked_product_path(click_data: Any, shop: Shop) -> str | None:
    """The product page to open for a click on the map (None: not a product)."""
    try:
        product_id = click_data["points"][0]["customdata"]
    except (TypeError, KeyError, IndexError):
        return None
    item = shop.item(product_id) if isinstance(product_id, str) else None
    return item.href if item else None


def register_callbacks(app: Dash, shop: Shop) -> None:
    """Colour-by and click-to-open."""

    @app.callback(Output("explore-graph", "figure"), Input("explore-colour", "value"),
                  prevent_initial_call=True)
    def _colour(attr: Any) -> dict[str, Any]:
        return cached_figure(shop, chosen_attribute(shop, attr))

    @app.callback(Output("url", "pathname"), Input("explore-graph", "clickData"),
                  prevent_initial_call=True)
    def _click(click_data: Any) -> Any:
        return clicked_product_path(click_data, shop) or no_update


def warm(shop: Shop) -> None:
    """Build every facet's figure now (300,000 products: about 0.3 s each), so no
    shopper waits for it and the workers share them."""
    for facet in shop.facets:
        cached_figure(shop, facet.name)


PAGE = Page("/explore", "Explore", explore_view, register_callbacks, warm=warm)
