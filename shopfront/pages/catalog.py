"""Catalog page (`/`): search, attribute filters, sort, a page of cards, pagination.

Its state lives in the URL query string, so links can be shared and Back restores it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from ..components import HTML_NS, WireComponent, div, grid, link, product_card, wire
from ..document import ShopDash
from ..query import (
    MAX_QUERY_CHARS,
    SORTS,
    CatalogQuery,
    catalog_query_string,
    make_query,
    parse_catalog_query,
)
from ..router import Head, Page, View
from ..shop import Facet, Item, Shop

PAGE_SIZE = 24
SEARCHABLE_FROM = 12  # a filter with more values than this can be typed into


def catalog_results(shop: Shop, query: CatalogQuery) -> tuple[Any, int, int, str]:
    """Grid of the query's page, number of pages, page shown and a result count line."""
    total, page, shown = shop.matching(query, PAGE_SIZE)
    n_pages = max(1, -(-total // PAGE_SIZE))
    if not total:
        body: Any = html.Div(
            [html.Div("No products match", className="h5"),
             html.Div("Try fewer words or clear a filter.", className="text-muted")],
            className="empty-state text-center py-5",
        )
    else:
        body = grid([catalog_card(item) for item in shown])
    chips = active_filters(shop, query)
    if chips is not None:
        body = [chips, body]
    count = f"{total:,} {'product' if total == 1 else 'products'}"
    if total > PAGE_SIZE:
        first = (page - 1) * PAGE_SIZE + 1
        count += f" · showing {first:,}–{first + len(shown) - 1:,}"
    return body, n_pages, page, count


def active_filters(shop: Shop, query: CatalogQuery) -> WireComponent | None:
    """The chosen filters as chips, "Gender: Men ×", each a link to the results without
    it, and "Clear all" (keeping the search text and the sort); None without filters."""
    if not query.filters:
        return None
    labels = {f.name: f.label for f in shop.facets}
    chips = []
    for name, values in query.filters:
        for value in values:
            rest = tuple((n, tuple(v for v in vs if not (n == name and v == value)))
                         for n, vs in query.filters)
            without = replace(query, filters=tuple((n, vs) for n, vs in rest if vs), page=1)
            chips.append(link(
                [f"{labels.get(name, name)}: {value} ",
                 wire("Span", HTML_NS, children="×", **{"aria-hidden": "true"}),
                 wire("Span", HTML_NS, children=" (remove)", className="visually-hidden")],
                "/" + catalog_query_string(without), className="filter-chip"))
    cleared = replace(query, filters=(), page=1)
    chips.append(link("Clear all", "/" + catalog_query_string(cleared),
                      className="clear-filters", id="catalog-clear-filters"))
    return div(chips, className="filter-chips d-flex flex-wrap gap-2 mb-3",
               id="catalog-chips")


def catalog_card(item: Item) -> WireComponent:
    """A product card with "Find similar", straight to the product's look-alikes."""
    return div([
        product_card(item),
        link([wire("Span", HTML_NS, children="Find similar"),
              wire("Span", HTML_NS, children=f" to {item.title}", className="visually-hidden")],
             f"{item.href}#similar-products", className="find-similar"),
    ], className="catalog-card h-100")


def photo_search_entry() -> html.Div:
    """Dynamic mode: search by photo, offered where shoppers start."""
    return html.Div(
        [html.Span("Have a photo of something you like?", className="me-2"),
         dcc.Link("Search by photo →", href="/search", className="btn btn-primary btn-sm",
                  id="catalog-photo-search")],
        className="photo-entry d-flex flex-wrap align-items-center gap-2 mb-3",
    )


def filter_options(facet: Facet, counts: dict[str, int], chosen: list[str]
                   ) -> list[dict[str, Any]]:
    """A facet's dropdown options with counts that follow the current results ("Red (12)");
    values that would give nothing are shown disabled unless chosen."""
    return [{"label": f"{v} ({counts.get(v, 0):,})", "value": v,
             "disabled": counts.get(v, 0) == 0 and v not in chosen}
            for v, _ in facet.options]


def catalog_layout(shop: Shop, query: CatalogQuery, photo_search: bool = False) -> html.Div:
    """The whole catalog page for a query."""
    body, n_pages, page, count = catalog_results(shop, query)
    counts = shop.facet_counts(query)
    filters = [
        dbc.Col(
            [
                # Dash's dropdown names itself after its value; assets/shopfront.js puts
                # this label first in its name ("Filter by gender: Men").
                html.Label(f"Filter by {f.label.lower()}:", className="visually-hidden",
                           htmlFor=dom_id(filter_id(f.name))),
                dcc.Dropdown(
                    id=filter_id(f.name),
                    options=filter_options(f, counts[f.name], query.filter_values(f.name)),
                    value=query.filter_values(f.name), multi=True, placeholder=f.label,
                    className="catalog-filter",
                    # typing only helps with long lists; on a phone it opens the keyboard
                    searchable=len(f.options) > SEARCHABLE_FROM,
                ),
            ],
            xs=12, sm=6, lg=True,
        )
        for f in shop.facets
    ]
    sorts = {k: v for k, v in SORTS.items() if shop.has_prices or not k.startswith("price")}
    controls = dbc.Row(
        [
            dbc.Col(
                dbc.InputGroup([
                    html.Label([html.Span(className="search-icon"),
                                html.Span("Search products", className="visually-hidden")],
                               htmlFor="catalog-search", className="input-group-text"),
                    dcc.Input(id="catalog-search", type="search", value=query.q,
                              placeholder="Search products", debounce=0.35,
                              className="form-control", autoComplete="off",
                              maxLength=MAX_QUERY_CHARS),
                ]),
                xs=12, lg=4,
            ),
            dbc.Col(
                dbc.InputGroup([
                    html.Label("Sort", htmlFor="catalog-sort", className="input-group-text"),
                    dbc.Select(id="catalog-sort",
                               options=[{"label": v, "value": k} for k, v in sorts.items()],
                               value=query.sort),
                ]),
                xs=12, sm=6, lg=3),
        ],
        className="g-2 mb-2",
    )
    return html.Div(
        [
            # The catalog's own view of the URL (only on this page, so its callback never
            # fires elsewhere); "callback-nav" keeps the app's main Location in step.
            dcc.Location(id="catalog-url", refresh="callback-nav"),
            html.Div([
                html.H1("Shop the catalog", className="h3 mb-1"),
                html.P("Pick anything you like and we'll show you what looks like it.",
                       className="text-muted mb-3"),
            ]),
            photo_search_entry() if photo_search else None,
            controls,
            html.Button(
                "Filters", id="catalog-filters-toggle", type="button",
                className="btn btn-outline-secondary filters-toggle d-lg-none mb-2",
                **{"aria-controls": "catalog-filters", "aria-expanded": "false"},
            ) if filters else None,
            # on a phone a panel the Filters button opens (assets/shopfront.js), so the
            # first products are on the first screen; inline from the lg breakpoint
            dbc.Row(filters, className="g-2 mb-3 filters-panel", id="catalog-filters")
            if filters else None,
            # announced by screen readers whenever it changes (a search, a filter, a page)
            html.Div(count, id="catalog-count", className="text-muted small mb-2",
                     role="status", **{"aria-live": "polite", "aria-atomic": "true"}),
            html.Div(body, id="catalog-grid"),
            html.Div(pagination(query, n_pages, page), id="catalog-pagination",
                     className="d-flex justify-content-center mt-4"),
            dcc.Store(id="catalog-scrolled"),
        ],
        className="catalog-page",
    )


PAGE_WINDOW = 2  # page links shown either side of the current page


def pagination(query: CatalogQuery, n_pages: int, page: int) -> WireComponent | None:
    """Links to the other pages of results: real `/?...&page=N` addresses (open in a new
    tab works), first/previous, a window around the current page, next/last."""
    if n_pages <= 1:
        return None

    def entry(label: str, number: int, name: str, current: bool = False) -> WireComponent:
        disabled = number == page and not current
        # dcc.Link renders no aria-* props: the name is visually hidden text instead
        text: Any = label if label == name else [
            wire("Span", HTML_NS, children=label, **{"aria-hidden": "true"}),
            wire("Span", HTML_NS, children=name, className="visually-hidden")]
        if current or disabled:
            inner = wire("Span", HTML_NS, children=text, className="page-link",
                         **({"aria-current": "page"} if current else {}))
        else:
            href = "/" + catalog_query_string(replace(query, page=number))
            inner = link(text, href, className="page-link", title=name)
        state = " active" if current else (" disabled" if disabled else "")
        return wire("Li", HTML_NS, children=inner, className=f"page-item{state}")

    first = max(1, page - PAGE_WINDOW)
    last = min(n_pages, page + PAGE_WINDOW)
    items = [entry("«", 1, "First page"), entry("‹", max(1, page - 1), "Previous page")]
    items += [entry(str(n), n, str(n), current=n == page) for n in range(first, last + 1)]
    items += [entry("›", min(n_pages, page + 1), "Next page"),
              entry("»", n_pages, f"Last page ({n_pages:,})")]
    return wire("Nav", HTML_NS, children=wire("Ul", HTML_NS, children=items,
                                              className="pagination flex-wrap"),
                **{"aria-label": "Result pages"})


def filter_id(attr: str) -> dict[str, str]:
    """The id of an attribute's filter dropdown."""
    return {"type": "catalog-filter", "attr": attr}


def dom_id(component_id: dict[str, str]) -> str:
    """A pattern-matching id as Dash writes it into the page (keys sorted, JSON values),
    for a label's `htmlFor`."""
    def js(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    return "{" + ",".join(f"{js(k)}:{js(v)}" for k, v in sorted(component_id.items())) + "}"


def catalog_head(shop: Shop, query: CatalogQuery) -> Head:
    """The catalog page's head: its title follows the search text."""
    title = f"“{query.q}” – search" if query.q else "Shop the catalog"
    description = (f"{shop.n_products:,} products. Pick anything you like and see what "
                   "looks like it.")
    return Head(title, description)


def catalog_view(shop: Shop, rest: str, search: str, photo_search: bool = False) -> View:
    """The page for `/?...` (`photo_search`: offer search by photo, dynamic mode)."""
    query = parse_catalog_query(search, shop.filter_choices)
    return View(catalog_layout(shop, query, photo_search), catalog_head(shop, query))


def sync_catalog(
    shop: Shop, trigger: str | None, url_search: Any, q: Any, sort: Any, chosen: Any,
) -> tuple[Any, str, Any, str, str, list[list[str]], Any]:
    """The catalog page's one callback, as a pure function (inputs are untrusted).

    Triggered by the URL (a page link, back/forward): controls follow the URL. Triggered
    by a control: the URL follows the controls, back on page 1. Returns (grid, count,
    page links, search text, sort, filter values per facet, new URL query string or
    no_update, options per facet).
    """
    choices = shop.filter_choices
    if trigger == "url":
        query = parse_catalog_query(url_search, choices)
    else:
        query = make_query(choices, q, chosen, sort, 1)
    body, n_pages, shown_page, count = catalog_results(shop, query)
    query_string = catalog_query_string(query)
    current = url_search if isinstance(url_search, str) else ""
    new_search = no_update if trigger == "url" or query_string == current else query_string
    filter_values = [query.filter_values(f.name) for f in shop.facets]
    links = pagination(query, n_pages, shown_page)
    counts = shop.facet_counts(query)
    options = [filter_options(f, counts[f.name], query.filter_values(f.name))
               for f in shop.facets]
    return body, count, links, query.q, query.sort, filter_values, new_search, options


def register_callbacks(app: ShopDash, shop: Shop) -> None:
    """The catalog page's callback: URL <-> controls <-> results."""
    facet_names = [f.name for f in shop.facets]

    @app.callback(
        Output("catalog-grid", "children"),
        Output("catalog-count", "children"),
        Output("catalog-pagination", "children"),
        Output("catalog-search", "value"),
        Output("catalog-sort", "value"),
        Output({"type": "catalog-filter", "attr": ALL}, "value"),
        Output("catalog-url", "search"),
        Output("page-title", "data", allow_duplicate=True),
        Output({"type": "catalog-filter", "attr": ALL}, "options"),
        Input("catalog-url", "search"),
        Input("catalog-search", "value"),
        Input("catalog-sort", "value"),
        Input({"type": "catalog-filter", "attr": ALL}, "value"),
        State("catalog-url", "pathname"),
        prevent_initial_call=True,
    )
    def _catalog(url_search: Any, q: Any, sort: Any, filter_values: Any,
                 pathname: Any) -> tuple[Any, ...]:
        if isinstance(pathname, str) and pathname.rstrip("/"):
            raise PreventUpdate  # leaving the catalog: its Location saw the next page's URL
        triggered = ctx.triggered_id if isinstance(ctx.triggered_id, str) else ""
        trigger = "url" if triggered == "catalog-url" else "control"
        chosen = dict(zip(filter_attributes(ctx.inputs_list[3]), filter_values or [],
                          strict=False))
        result = sync_catalog(shop, trigger, url_search, q, sort, chosen)
        # Filter outputs follow the order of the filter components on the page.
        attrs = filter_attributes(ctx.outputs_list[5])
        by_name = dict(zip(facet_names, result[5], strict=True))
        shown = [by_name.get(a, []) for a in attrs]
        options_of = dict(zip(facet_names, result[7], strict=True))
        options = [options_of.get(a, []) for a in attrs]
        title = app.page_title(catalog_head(shop, CatalogQuery(q=result[3])))
        return (*result[:5], shown, result[6], title, options)

    # New results after a page link: bring their top into view if it is above the screen.
    app.clientside_callback(
        ClientsideFunction(namespace="shopfront", function_name="results_into_view"),
        Output("catalog-scrolled", "data"),
        Input("catalog-grid", "children"),
        prevent_initial_call=True,
    )


def filter_attributes(entries: Any) -> list[str | None]:
    """The attribute of each filter component in a callback's ALL list (None if odd)."""
    if not isinstance(entries, list):
        return []
    return [e["id"].get("attr") if isinstance(e, dict) and isinstance(e.get("id"), dict)
            else None for e in entries]


PAGE = Page("/", "Catalog", catalog_view, register_callbacks)
# Dynamic mode's catalog: the same page, with the search-by-photo entry.
PHOTO_SEARCH_PAGE = Page("/", "Catalog", partial(catalog_view, photo_search=True),
                         register_callbacks)
