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
from dash import Dash, Input, Output, ctx, dcc, html, no_update

from ..components import div, link, product_card
from ..router import Head, Page, View
from ..shop import Item, Shop
from ..text import attribute_label

MAX_LEGEND_VALUES = 12  # more values than this are lumped into "other"
COLOUR_SHARE = 0.6  # an attribute "names colours" when this share of its values do
# Colour words of shop catalogs (CSS names plus fashion's own), drawn in their colour.
NAMED_COLOURS = {
    "black": "#1a1a1a", "white": "#ffffff", "grey": "#8c8c8c", "gray": "#8c8c8c",
    "silver": "#c0c0c0", "charcoal": "#36454f", "red": "#d62728", "maroon": "#800000",
    "burgundy": "#800020", "pink": "#f4a6c1", "magenta": "#d0338f", "rose": "#e8a0a8",
    "orange": "#ff7f0e", "rust": "#b7410e", "coral": "#ff7f50", "peach": "#ffcba4",
    "yellow": "#f2d22e", "mustard": "#e1ad01", "gold": "#d4af37", "golden": "#d4af37",
    "beige": "#e3d5b8", "cream": "#f3ead3", "khaki": "#c3b091", "tan": "#d2b48c",
    "brown": "#7b4a2d", "chocolate": "#5c3317", "coffee": "#6f4e37", "camel": "#c19a6b",
    "bronze": "#a97142", "copper": "#b87333", "nude": "#e3bc9a", "skin": "#e8beac",
    "green": "#2ca02c", "olive": "#6b8e23", "lime": "#9acd32", "mint": "#98d8b0",
    "sea": "#2e8b57", "teal": "#008080", "turquoise": "#30d5c8", "blue": "#1f5fbf",
    "navy": "#1b2a5c", "denim": "#3b5b92", "sky": "#87ceeb", "purple": "#7e3f98",
    "violet": "#8f5bd6", "lavender": "#b7a6de", "lilac": "#c8a2c8", "mauve": "#b784a7",
    "plum": "#8e4585", "sand": "#d8c29d", "taupe": "#8b8589", "steel": "#71797e",
    "fluorescent": "#39ff14", "metallic": "#aaa9ad", "off": "#f5f3ea",
}
LIGHT = {"white", "cream", "off", "beige", "nude", "skin", "peach", "sand", "silver"}
SCATTERGL_FROM = 5000  # WebGL scatter above this many points, SVG below


def named_colour(value: str) -> str | None:
    """The colour a value names ("Navy Blue" -> navy, "Off White" -> off-white), or None."""
    words = [w for w in value.casefold().replace("-", " ").split() if w]
    if not words:
        return None
    if len(words) > 1 and words[0] in ("navy", "off", "sea", "sky", "steel"):
        return NAMED_COLOURS[words[0]]
    return NAMED_COLOURS.get(words[-1]) or NAMED_COLOURS.get(words[0])


def colour_marker(value: str, size: int) -> dict[str, Any] | None:
    """A marker drawn in the colour the value names (light ones outlined), or None."""
    colour = named_colour(value)
    if colour is None:
        return None
    light = any(w in LIGHT for w in value.casefold().split())
    line = {"color": "#6c757d", "width": 1} if light else {"width": 0}
    return {"size": size, "opacity": 0.85, "color": colour, "line": line}


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
    size = 7 if len(points) < 2000 else 4
    named = [v for v in order if v not in ("other", "(none)")]
    by_colour = bool(named) and (
        sum(named_colour(v) is not None for v in named) >= COLOUR_SHARE * len(named))
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
            "marker": (by_colour and colour_marker(value, size))
                      or {"size": size, "opacity": 0.8},
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
                   "Point at a dot or tap it to see the product.", className="text-muted"),
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
            dbc.Row([
                dbc.Col(dbc.Card(
                    dcc.Graph(id="explore-graph", figure=figure,
                              config={"displaylogo": False, "scrollZoom": True,
                                      "modeBarButtonsToRemove": ["lasso2d", "select2d"]}),
                    body=True, className="p-1",
                ), lg=9),
                dbc.Col(html.Div(preview(None), id="explore-preview", role="status",
                                 **{"aria-live": "polite"}), lg=3),
            ], className="g-3"),
        ],
        className="explore-page",
    )
    return View(layout, Head("Explore the catalog",
                             "A map of the catalog: products that look alike sit together."))


def point_product(data: Any, shop: Shop) -> Item | None:
    """The product under a hovered or tapped point of the map (None: not a product)."""
    try:
        product_id = data["points"][0]["customdata"]
    except (TypeError, KeyError, IndexError):
        return None
    return shop.item(product_id) if isinstance(product_id, str) else None


def clicked_product_path(click_data: Any, shop: Shop) -> str | None:
    """The product page of a point of the map (None: not a product)."""
    item = point_product(click_data, shop)
    return item.href if item else None


def preview(item: Item | None) -> Any:
    """The product beside the map: its photo, title and price, with a link to its page
    (and its look-alikes); a hint before any point was chosen."""
    if item is None:
        return div("Point at a dot, or tap it, to see the product here.",
                   className="explore-hint text-muted small", id="explore-hint")
    return div([
        product_card(item),
        link("See it and its look-alikes →", item.href,
             className="btn btn-outline-primary btn-sm w-100 mt-2", id="explore-open"),
    ], className="explore-selected")


def register_callbacks(app: Dash, shop: Shop) -> None:
    """Colour-by, and the product of the pointed or tapped dot beside the map."""

    @app.callback(Output("explore-graph", "figure"), Input("explore-colour", "value"),
                  prevent_initial_call=True)
    def _colour(attr: Any) -> dict[str, Any]:
        return cached_figure(shop, chosen_attribute(shop, attr))

    @app.callback(Output("explore-preview", "children"),
                  Input("explore-graph", "hoverData"), Input("explore-graph", "clickData"),
                  prevent_initial_call=True)
    def _preview(hover: Any, click: Any) -> Any:
        data = click if "explore-graph.clickData" in ctx.triggered_prop_ids else hover
        item = point_product(data, shop)
        return preview(item) if item else no_update


def warm(shop: Shop) -> None:
    """Build every facet's figure now (300,000 products: about 0.3 s each), so no
    shopper waits for it and the workers share them."""
    for facet in shop.facets:
        cached_figure(shop, facet.name)


PAGE = Page("/explore", "Explore", explore_view, register_callbacks, warm=warm)
