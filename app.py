"""lookalike shop front: a Plotly Dash app serving a precomputed folder (contract 2).

Static mode reads only JSON and thumbnails, never TensorFlow:

    python app.py [--precomputed FOLDER] [--host 127.0.0.1] [--port 8050]   # development
    gunicorn app:server                                                     # production

Dynamic mode (`--dynamic [--model PATH] [--preload-model]`, or LOOKALIKE_DYNAMIC=1,
LOOKALIKE_MODEL, LOOKALIKE_PRELOAD=1 under gunicorn) adds "Search by photo" (/search):
one `pipeline.search.PhotoSearcher` per process, imported only in that mode.

The folder comes from `--precomputed`, else the LOOKALIKE_PRECOMPUTED environment
variable, else `precomputed/demo`. Everything a page shows is computed once at start-up
(`Catalog.load`); callbacks are thin wrappers around pure functions (`render_page`,
`catalog_results`, `explore_figure`, ...) that tests call directly. Pages live in a
registry (`STATIC_PAGES`, `Page`); dynamic mode adds its page with
`create_app(folder, extra_pages=...)`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html as html_text
import importlib.util
import logging
import os
import sys
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from flask import Response, abort, send_from_directory

from pipeline.precomputed import Precomputed, PrecomputedError, read_precomputed

if TYPE_CHECKING:  # dynamic mode only; importing it loads numpy and Pillow
    from pipeline.search import PhotoSearcher

ROOT = Path(__file__).resolve().parent
ENV_VAR = "LOOKALIKE_PRECOMPUTED"
DEFAULT_FOLDER = ROOT / "precomputed" / "demo"
ASSETS = ROOT / "assets"
PLACEHOLDER_URL = "/assets/placeholder.svg"
PAGE_SIZE = 24
MAX_FACETS = 6  # filters shown on the catalog page
MAX_FACET_VALUES = 60  # an attribute with more distinct values is not a useful filter
MAX_LEGEND_VALUES = 12  # explore page: more values than this are lumped into "other"
SCATTERGL_FROM = 5000  # WebGL scatter above this many points, SVG below
THUMB_MAX_AGE = 7 * 24 * 3600  # thumbnails never change within a build
RESERVED_QUERY_KEYS = ("q", "sort", "page")
SORTS = {
    "featured": "Featured",
    "price-asc": "Price: low to high",
    "price-desc": "Price: high to low",
    "title": "Name: A to Z",
}
CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Item:
    """One product as the pages show it, formatted once at start-up."""

    id: str
    title: str
    price: float | None
    price_text: str
    product_url: str | None
    thumb_url: str
    href: str
    attrs: dict[str, str]
    xy: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Facet:
    """A filterable attribute: its name and (value, count) options, most common first."""

    name: str
    label: str
    options: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """What the catalog page shows: search text, filters, sort order and page number."""

    q: str = ""
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sort: str = "featured"
    page: int = 1

    def filter_values(self, name: str) -> list[str]:
        """The selected values of one attribute (empty list = no filter)."""
        return next((list(values) for key, values in self.filters if key == name), [])


def format_price(price: Any, currency: Any) -> str:
    """Price as a shopper reads it ("€12.50", "12.50 SEK"); "" when unknown."""
    if price is None or isinstance(price, bool):
        return ""
    try:
        amount = float(price)
    except (TypeError, ValueError):
        return ""
    symbol = CURRENCY_SYMBOLS.get(str(currency or "").upper())
    if symbol:
        return f"{symbol}{amount:,.2f}"
    return f"{amount:,.2f} {currency}" if currency else f"{amount:,.2f}"


@lru_cache(maxsize=1024)
def attribute_label(name: str) -> str:
    """Readable label for an attribute name: "baseColour" -> "Base colour"."""
    words: list[str] = []
    current = ""
    for ch in name.replace("_", " ").replace("-", " "):
        if ch.isupper() and current and not current[-1].isupper() and current[-1] != " ":
            words.append(current)
            current = ch.lower()
        else:
            current += ch
    words.append(current)
    text = " ".join(w.strip() for w in words if w.strip())
    return text[:1].upper() + text[1:]


def pick_facets(items: Sequence[Item]) -> list[Facet]:
    """Attributes worth filtering by: 2..MAX_FACET_VALUES distinct values, set on most items."""
    counts: dict[str, Counter[str]] = {}
    for item in items:
        for name, value in item.attrs.items():
            if value:
                counts.setdefault(name, Counter())[value] += 1
    facets = []
    for name, counter in counts.items():  # first-seen order = the catalog's column order
        covered = sum(counter.values())
        if name in RESERVED_QUERY_KEYS or not 2 <= len(counter) <= MAX_FACET_VALUES:
            continue
        if covered < 0.5 * len(items) or len(counter) >= covered:
            continue
        options = tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
        facets.append(Facet(name, attribute_label(name), options))
    return facets[:MAX_FACETS]


class TextIndex:
    """Substring search over many short lowercase texts, one row per text.

    A search word never contains whitespace, so it can only match inside one
    whitespace-separated token: the index maps each distinct token to its rows, and a
    search scans the (much smaller) vocabulary with C-level `str.find` and unions the
    rows of the tokens that contain the word.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        rows_by_token: dict[str, list[int]] = {}
        for row, text in enumerate(texts):
            for token in set(text.split()):
                rows_by_token.setdefault(token, []).append(row)
        self.tokens = sorted(rows_by_token)
        self.rows = [frozenset(rows_by_token[t]) for t in self.tokens]
        self.vocabulary = "\n".join(self.tokens)
        self.starts: list[int] = []
        position = 0
        for token in self.tokens:
            self.starts.append(position)
            position += len(token) + 1

    def rows_containing(self, word: str) -> set[int]:
        """Rows whose text contains `word` (lowercase, no whitespace)."""
        vocabulary, starts = self.vocabulary, self.starts
        n = len(starts)
        hits = []
        position = vocabulary.find(word)
        while position != -1:
            k = bisect_right(starts, position) - 1
            hits.append(self.rows[k])
            position = vocabulary.find(word, starts[k + 1]) if k + 1 < n else -1
        return set().union(*hits)

    def rows_containing_all(self, words: Sequence[str]) -> set[int]:
        """Rows whose text contains every word."""
        found: set[int] | None = None
        for word in words:
            rows = self.rows_containing(word)
            found = rows if found is None else found & rows
            if not found:
                break
        return found or set()


@dataclass
class Catalog:
    """A precomputed folder loaded and indexed for serving; built once per process."""

    folder: Path
    meta: dict[str, Any]
    items: list[Item]
    index: dict[str, int]
    neighbours: list[tuple[tuple[int, float], ...]]
    search_text: list[str]
    facets: list[Facet]
    facet_members: dict[str, dict[str, frozenset[int]]] = field(default_factory=dict)
    thumb_paths: dict[str, str] = field(default_factory=dict)
    text_index: TextIndex = field(default_factory=lambda: TextIndex([]))
    title_index: TextIndex = field(default_factory=lambda: TextIndex([]))
    orders: dict[str, list[int]] = field(default_factory=dict)
    figures: dict[str, go.Figure] = field(default_factory=dict, repr=False)

    @property
    def metric(self) -> str:
        """"cosine" (score = similarity, higher is closer) or "euclidean" (distance)."""
        return str(self.meta.get("metric") or "cosine")

    @classmethod
    def load(cls, folder: str | Path) -> Catalog:
        """Read and index a precomputed folder; raise PrecomputedError if it is unusable."""
        return cls.from_precomputed(read_precomputed(folder))

    @classmethod
    def from_precomputed(cls, pre: Precomputed) -> Catalog:
        """Index an already read precomputed folder (dynamic mode reads it once for both)."""
        folder = pre.folder
        items: list[Item] = []
        for p in pre.products:
            pid = str(p["id"])
            thumb = p.get("thumb") or f"thumbs/{pid}.jpg"
            has_thumb = (folder / thumb).is_file()
            xy = p.get("xy")
            attrs = p.get("attrs") or {}
            items.append(
                Item(
                    id=pid,
                    title=str(p.get("title") or pid),
                    price=_as_float(p.get("price")),
                    price_text=format_price(p.get("price"), p.get("currency")),
                    product_url=p.get("product_url") or None,
                    thumb_url=f"/thumbs/{quote(pid)}.jpg" if has_thumb else PLACEHOLDER_URL,
                    href=product_href(pid),
                    attrs={str(k): "" if v is None else str(v) for k, v in attrs.items()},
                    xy=(float(xy[0]), float(xy[1])) if xy and len(xy) == 2 else None,
                )
            )
        index = {item.id: i for i, item in enumerate(items)}
        neighbours = []
        for item in items:
            pairs = pre.neighbours.get(item.id) or []
            resolved = tuple(
                (index[str(nid)], float(score)) for nid, score in pairs if str(nid) in index
            )
            neighbours.append(resolved)
        search_text = [
            " ".join([item.title, *item.attrs.values()]).lower() for item in items
        ]
        facets = pick_facets(items)
        members: dict[str, dict[str, set[int]]] = {f.name: {} for f in facets}
        for i, item in enumerate(items):
            for name, by_value in members.items():
                value = item.attrs.get(name)
                if value:
                    by_value.setdefault(value, set()).add(i)
        facet_members = {
            name: {v: frozenset(ix) for v, ix in by_value.items()}
            for name, by_value in members.items()
        }
        thumb_paths = {
            str(p["id"]): str(p.get("thumb") or f"thumbs/{p['id']}.jpg") for p in pre.products
        }
        unknown_last = float("inf")
        orders = {
            "price-asc": sorted(
                range(len(items)),
                key=lambda i: items[i].price if items[i].price is not None else unknown_last,
            ),
            "price-desc": sorted(
                range(len(items)),
                key=lambda i: -items[i].price if items[i].price is not None else unknown_last,
            ),
            "title": sorted(range(len(items)), key=lambda i: items[i].title.lower()),
        }
        return cls(folder, pre.meta, items, index, neighbours, search_text, facets,
                   facet_members, thumb_paths, TextIndex(search_text),
                   TextIndex([item.title.lower() for item in items]), orders)

    def item(self, product_id: str) -> Item | None:
        """The product with this id, or None."""
        i = self.index.get(product_id)
        return None if i is None else self.items[i]

    def thumb_path(self, product_id: str) -> str | None:
        """Thumbnail path relative to the folder, only for ids in the catalog."""
        return self.thumb_paths.get(product_id)

    def matching(self, query: CatalogQuery) -> list[int]:
        """Indices of the products matching the search text and filters, in query.sort order."""
        candidates: frozenset[int] | None = None
        for name, values in query.filters:
            by_value = self.facet_members.get(name)
            if by_value is None or not values:
                continue
            chosen = frozenset().union(*(by_value.get(v, frozenset()) for v in values))
            candidates = chosen if candidates is None else candidates & chosen
        words = query.q.lower().split()
        if words:
            hits = self.text_index.rows_containing_all(words)
            selected: set[int] | frozenset[int] | None = (
                hits if candidates is None else hits & candidates
            )
        else:
            selected = candidates
        order = self.orders.get(query.sort)
        if order is not None:  # precomputed sort orders: one pass, no per-query sort
            if selected is None:
                return list(order)
            return [i for i in order if i in selected]
        rows = list(range(len(self.items))) if selected is None else sorted(selected)
        if words:  # "featured" with a search: title hits before attribute-only hits
            in_title = self.title_index.rows_containing_all(words)
            rows.sort(key=lambda i: i not in in_title)
        return rows


def _as_float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- query strings


def parse_catalog_query(search: str | None, catalog: Catalog) -> CatalogQuery:
    """Parse the catalog page's URL query string ("?q=shirt&gender=Men&page=2")."""
    pairs = parse_qsl((search or "").lstrip("?"), keep_blank_values=False)
    q, sort, page = "", "featured", 1
    chosen: dict[str, list[str]] = {}
    facet_names = {f.name for f in catalog.facets}
    for key, value in pairs:
        if key == "q":
            q = value.strip()
        elif key == "sort" and value in SORTS:
            sort = value
        elif key == "page":
            page = int(value) if value.isdigit() and int(value) > 0 else 1
        elif key in facet_names and value not in chosen.setdefault(key, []):
            chosen[key].append(value)
    return make_query(catalog, q, chosen, sort, page)


def make_query(
    catalog: Catalog, q: str | None, chosen: dict[str, Sequence[str] | None], sort: str | None,
    page: int | None,
) -> CatalogQuery:
    """A normalised CatalogQuery: filters in facet order, unknown attributes dropped."""
    filters = tuple(
        (f.name, tuple(chosen[f.name]))
        for f in catalog.facets
        if chosen.get(f.name)
    )
    return CatalogQuery(
        q=(q or "").strip(),
        filters=filters,
        sort=sort if sort in SORTS else "featured",
        page=max(1, int(page or 1)),
    )


def catalog_query_string(query: CatalogQuery) -> str:
    """The URL query string for a CatalogQuery ("" for the plain first page)."""
    pairs: list[tuple[str, str]] = []
    if query.q:
        pairs.append(("q", query.q))
    for name, values in query.filters:
        pairs.extend((name, v) for v in values)
    if query.sort != "featured":
        pairs.append(("sort", query.sort))
    if query.page > 1:
        pairs.append(("page", str(query.page)))
    return "?" + urlencode(pairs) if pairs else ""


# --------------------------------------------------------------------------- components


def product_href(product_id: str) -> str:
    """The URL of a product's page."""
    return f"/product/{quote(product_id, safe='')}"


MATCH_SCALE = "0% is as alike as two typical products of this catalog, 100% identical."


def similarity_display(
    score: float, rank: int, metric: str, best_score: float, baseline: float | None = None
) -> tuple[str, float, str]:
    """How a neighbour's score is shown: (badge text, bar fraction 0..1, explanation).

    Cosine scores are similarities: "92% match". With the catalog's `baseline` (the mean
    cosine between two of its products, in meta.json as `similarity_baseline`), 0% is a
    typical pair and 100% identical: CNN features of photos on white all score 0.95+, so
    raw cosines would read "99% match" for everything. Euclidean scores are distances
    (lower is closer), which mean nothing to a shopper, so the badge gives the rank and
    the bar shows closeness relative to the closest match (closest / this distance).
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


HTML_NS = "dash_html_components"
DCC_NS = "dash_core_components"
WireComponent = dict[str, Any]


def wire(component_type: str, namespace: str, **props: Any) -> WireComponent:
    """A component in Dash's JSON wire format, built without Dash's per-instance validation.

    Product cards are the hot path (24 per catalog page, k per product page): building them
    as plain dicts is several times faster than Component objects plus their JSON encoding,
    and the browser receives exactly the same thing.
    """
    return {"type": component_type, "namespace": namespace, "props": props}


def product_card(item: Item, footer: list[WireComponent] | None = None) -> WireComponent:
    """A clickable card (thumbnail, title, price) linking to the product's page (a dcc.Link)."""
    body = [
        wire("Div", HTML_NS, children=item.title, className="product-title", title=item.title),
        wire("Div", HTML_NS, children=item.price_text or "\u00a0", className="product-price"),
        *(footer or []),
    ]
    card = wire(
        "Div",
        HTML_NS,
        className="card product-card h-100",
        children=[
            wire("Div", HTML_NS, className="product-thumb",
                 children=wire("Img", HTML_NS, src=item.thumb_url, alt=item.title)),
            wire("Div", HTML_NS, className="card-body p-2", children=body),
        ],
    )
    return wire(
        "Link",
        DCC_NS,
        id={"type": "product-card", "id": item.id},
        href=item.href,
        className="product-link",
        children=card,
    )


def similar_card(
    catalog: Catalog, index: int, score: float, rank: int, best: float,
    metric: str | None = None,
) -> WireComponent:
    """A product card with its similarity badge and bar (scores in `metric`, default the
    catalog's), for the product page and the search-by-photo results."""
    badge, fraction, explanation = similarity_display(
        score, rank, metric or catalog.metric, best, catalog.meta.get("similarity_baseline")
    )
    bar = wire("Div", HTML_NS, className="match-fill", style={"width": f"{fraction:.0%}"})
    footer = wire(
        "Div",
        HTML_NS,
        className="match",
        title=explanation,
        children=[
            wire("Span", HTML_NS, className="match-text", children=badge),
            wire("Div", HTML_NS, className="match-bar", children=bar),
        ],
    )
    return product_card(catalog.items[index], [footer])


def navbar(pages: Sequence[Page], brand: str) -> dbc.Navbar:
    """The top bar: brand and one link per page that has a navbar label."""
    def text(page: Page) -> Any:
        if not page.short_label:
            return page.label
        return [html.Span(page.label, className="d-none d-sm-inline"),
                html.Span(page.short_label, className="d-sm-none", title=page.label)]

    links = [
        dbc.NavItem(dbc.NavLink(text(p), href=p.path, active="exact"))
        for p in pages
        if p.label
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dcc.Link(
                    [html.Span("◐", className="brand-mark"), " lookalike"],
                    href="/",
                    className="navbar-brand",
                ),
                html.Span(brand, className="navbar-text small d-none d-md-inline"),
                dbc.Nav(links, className="ms-auto", navbar=True),
            ]
        ),
        className="site-nav mb-4",
        color="#1d2130",
        dark=True,
        expand=True,  # three links fit on a phone: no hamburger menu needed
    )


def grid(
    cards: list[Any], cols: str = "row-cols-2 row-cols-sm-3 row-cols-md-4 row-cols-xl-6"
) -> WireComponent:
    """A responsive row of cards."""
    return wire(
        "Div",
        HTML_NS,
        className=f"row g-3 {cols}",
        children=[wire("Div", HTML_NS, className="col", children=card) for card in cards],
    )


# --------------------------------------------------------------------------- pages


def catalog_results(catalog: Catalog, query: CatalogQuery) -> tuple[Any, int, int, str]:
    """Grid of the query's page, number of pages, page shown and a result count line."""
    rows = catalog.matching(query)
    n_pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(query.page, n_pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    if not rows:
        body: Any = html.Div(
            [
                html.Div("No products match", className="h5"),
                html.Div("Try fewer words or clear a filter.", className="text-muted"),
            ],
            className="empty-state text-center py-5",
        )
    else:
        body = grid([product_card(catalog.items[i]) for i in shown])
    noun = "product" if len(rows) == 1 else "products"
    count = f"{len(rows):,} {noun}"
    if len(rows) > PAGE_SIZE:
        first = (page - 1) * PAGE_SIZE + 1
        count += f" · showing {first:,}–{first + len(shown) - 1:,}"
    return body, n_pages, page, count


def catalog_page(catalog: Catalog, query: CatalogQuery) -> html.Div:
    """Catalog: search box, attribute filters, sort, a page of product cards, pagination."""
    body, n_pages, page, count = catalog_results(catalog, query)
    filters = [
        dbc.Col(
            dcc.Dropdown(
                id={"type": "catalog-filter", "attr": f.name},
                options=[{"label": f"{v} ({n:,})", "value": v} for v, n in f.options],
                value=query.filter_values(f.name),
                multi=True,
                placeholder=f.label,
                className="catalog-filter",
            ),
            xs=12, sm=6, lg=True,
        )
        for f in catalog.facets
    ]
    controls = dbc.Row(
        [
            dbc.Col(
                dbc.InputGroup(
                    [
                        dbc.InputGroupText(html.Span(className="search-icon")),
                        dcc.Input(
                            id="catalog-search",
                            type="search",
                            value=query.q,
                            placeholder="Search products",
                            debounce=0.35,
                            className="form-control",
                            autoComplete="off",
                        ),
                    ]
                ),
                xs=12, lg=4,
            ),
            dbc.Col(
                dbc.Select(
                    id="catalog-sort",
                    options=[{"label": v, "value": k} for k, v in SORTS.items()],
                    value=query.sort,
                ),
                xs=12, sm=6, lg=2,
            ),
        ],
        className="g-2 mb-2",
    )
    return html.Div(
        [
            # The catalog's own view of the URL: its state lives in the query string, so
            # back/forward and shared links work. Only present on this page, so its callback
            # never fires elsewhere; "callback-nav" keeps the app's main Location in step.
            dcc.Location(id="catalog-url", refresh="callback-nav"),
            html.Div(
                [
                    html.H1("Shop the catalog", className="h3 mb-1"),
                    html.P(
                        "Pick anything you like and we'll show you what looks like it.",
                        className="text-muted mb-3",
                    ),
                ]
            ),
            controls,
            dbc.Row(filters, className="g-2 mb-3") if filters else None,
            html.Div(count, id="catalog-count", className="text-muted small mb-2"),
            html.Div(body, id="catalog-grid"),
            html.Div(
                dbc.Pagination(
                    id="catalog-pagination",
                    max_value=n_pages,
                    active_page=page,
                    fully_expanded=False,
                    first_last=True,
                    previous_next=True,
                ),
                className="d-flex justify-content-center mt-4",
            ),
        ],
        className="catalog-page",
    )


def div(children: Any = None, **props: Any) -> WireComponent:
    """html.Div in wire format (see `wire`)."""
    return wire("Div", HTML_NS, children=children, **props)


def link(children: Any, href: str, **props: Any) -> WireComponent:
    """dcc.Link in wire format: client-side navigation, no page reload."""
    return wire("Link", DCC_NS, children=children, href=href, **props)


def breadcrumb(catalog: Catalog, item: Item) -> WireComponent:
    """"Catalog › Men › Tshirts": each step links to the catalog filtered down to it."""
    steps: list[Any] = [link("Catalog", "/")]
    filters: list[tuple[str, tuple[str, ...]]] = []
    for facet in catalog.facets[:2]:
        value = item.attrs.get(facet.name)
        if not value:
            continue
        filters.append((facet.name, (value,)))
        query = make_query(catalog, "", dict(filters), "featured", 1)
        steps += [wire("Span", HTML_NS, children="›", className="mx-2"),
                  link(value, "/" + catalog_query_string(query))]
    return wire("Nav", HTML_NS, children=steps, className="crumbs small mb-2",
                **{"aria-label": "breadcrumb"})


def product_page(catalog: Catalog, product_id: str) -> Any:
    """A product's page: big image, details, shop link, and its k most similar products.

    Built in wire format: this is the most requested page, and its cost must stay O(k).
    """
    i = catalog.index.get(product_id)
    if i is None:
        return not_found_page(f"We couldn't find a product with the id “{product_id}”.")
    item = catalog.items[i]
    neighbours = catalog.neighbours[i]
    best = neighbours[0][1] if neighbours else 0.0
    similar = [
        similar_card(catalog, j, score, rank, best)
        for rank, (j, score) in enumerate(neighbours, start=1)
    ]
    facet_names = {f.name for f in catalog.facets}
    chips = []
    for name, value in item.attrs.items():
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
        actions.append(wire(
            "A", HTML_NS, children="View in shop ↗", href=item.product_url, target="_blank",
            rel="noopener noreferrer", className="btn btn-primary btn-lg me-2",
            id="product-shop-link",
        ))
    actions.append(link("← Back to catalog", "/", className="btn btn-outline-secondary"))
    if catalog.metric == "euclidean":
        how = ("Ranked by Euclidean distance between image features (lower is closer); "
               "the bar shows closeness relative to the closest match.")
    else:
        how = f"Ranked by cosine similarity between image features: {MATCH_SCALE}"
    hero = div(
        [
            div(div(wire("Img", HTML_NS, src=item.thumb_url, alt=item.title,
                          id="product-image"), className="product-hero"),
                className="col-md-5"),
            div(
                [
                    breadcrumb(catalog, item),
                    wire("H1", HTML_NS, children=item.title, id="product-title",
                         className="h2"),
                    div(item.price_text, className="product-hero-price mb-3"),
                    div(chips, className="chips mb-4"),
                    div(actions),
                ],
                className="col-md-7 pt-md-3",
            ),
        ],
        className="row g-4 mb-5 align-items-start",
    )
    return div(
        [
            hero,
            wire("H2", HTML_NS, children="Looks like this", className="h4 mb-1"),
            wire("P", HTML_NS, children=how, className="text-muted small mb-3"),
            div(
                grid(similar, "row-cols-2 row-cols-sm-3 row-cols-md-4 row-cols-xl-5")
                if similar
                else wire("P", HTML_NS, children="No similar products were computed for this one."),
                id="similar-products",
            ),
        ],
        className="product-page",
        id={"type": "product-page", "id": item.id},
    )


def explore_figure(catalog: Catalog, attr: str | None) -> go.Figure:
    """Scatter of the catalog's 2-D map, one trace per value of `attr` (or one trace)."""
    rows = [i for i, item in enumerate(catalog.items) if item.xy is not None]
    groups: dict[str, list[int]] = {}
    if attr:
        counts = Counter(catalog.items[i].attrs.get(attr) or "(none)" for i in rows)
        keep = {v for v, _ in counts.most_common(MAX_LEGEND_VALUES)}
        for i in rows:
            value = catalog.items[i].attrs.get(attr) or "(none)"
            groups.setdefault(value if value in keep else "other", []).append(i)
        order = sorted(groups, key=lambda v: (v == "other", -len(groups[v]), v))
    else:
        groups = {"products": rows}
        order = ["products"]
    trace_type = go.Scattergl if len(rows) >= SCATTERGL_FROM else go.Scatter
    fig = go.Figure()
    for value in order:
        members = groups[value]
        items = [catalog.items[i] for i in members]
        fig.add_trace(
            trace_type(
                x=[it.xy[0] for it in items],  # type: ignore[index]
                y=[it.xy[1] for it in items],  # type: ignore[index]
                mode="markers",
                name=f"{value} ({len(items):,})",
                customdata=[it.id for it in items],
                # Plotly renders a few HTML tags in hover text: escape scraped titles.
                text=[
                    html_text.escape(it.title) + (f"<br>{html_text.escape(it.price_text)}"
                                                  if it.price_text else "")
                    for it in items
                ],
                hovertemplate="%{text}<extra>" + html_text.escape(value) + "</extra>",
                marker={"size": 7 if len(rows) < 2000 else 4, "opacity": 0.8},
            )
        )
    fig.update_layout(
        template="plotly_white",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=620,
        # below the map: a long legend on top would run under Plotly's toolbar
        legend={"itemsizing": "constant", "orientation": "h", "x": 0, "y": 0,
                "yanchor": "top", "title": {"text": attribute_label(attr) if attr else ""}},
        xaxis={"visible": False},
        yaxis={"visible": False},
        hovermode="closest",
        dragmode="pan",
        uirevision=attr or "",
    )
    return fig


def explore_page(catalog: Catalog, attr: str | None = None) -> html.Div:
    """Explore: the 2-D map of the catalog, coloured by a chosen attribute."""
    names = [f.name for f in catalog.facets]
    attr = attr if attr in names else (names[0] if names else None)
    n_mapped = sum(1 for item in catalog.items if item.xy is not None)
    return html.Div(
        [
            html.H1("Explore the catalog", className="h3 mb-1"),
            html.P(
                "Each dot is a product; products that look alike sit close together. "
                "Hover to see one, click to open it.",
                className="text-muted",
            ),
            dbc.Row(
                [
                    dbc.Col(html.Label("Colour by", htmlFor="explore-colour",
                                       className="col-form-label"), width="auto"),
                    dbc.Col(
                        dbc.Select(
                            id="explore-colour",
                            options=[{"label": attribute_label(n), "value": n} for n in names],
                            value=attr,
                        ),
                        xs=8, md=3,
                    ),
                    dbc.Col(html.Span(f"{n_mapped:,} products", className="text-muted small"),
                            width="auto"),
                ],
                className="g-2 mb-2 align-items-center",
            )
            if names
            else None,
            dbc.Card(
                dcc.Graph(
                    id="explore-graph",
                    figure=figure_for(catalog, attr),
                    config={"displaylogo": False, "scrollZoom": True,
                            "modeBarButtonsToRemove": ["lasso2d", "select2d"]},
                ),
                body=True,
                className="p-1",
            ),
        ],
        className="explore-page",
    )


def figure_for(catalog: Catalog, attr: str | None) -> go.Figure:
    """The explore figure, built once per (catalog, attribute) and then reused."""
    key = attr or ""
    if key not in catalog.figures:
        catalog.figures[key] = explore_figure(catalog, attr)
    return catalog.figures[key]


def about_rows(catalog: Catalog) -> list[tuple[str, str]]:
    """(label, value) pairs describing how the recommendations were built, from meta.json."""
    meta = catalog.meta
    model = meta.get("model") or {}
    metric = catalog.metric
    metric_text = {
        "cosine": "cosine similarity (higher is closer)",
        "euclidean": "Euclidean distance (lower is closer)",
    }.get(metric, metric)
    created = str(meta.get("created_at") or "")
    with contextlib.suppress(ValueError):  # not ISO 8601: show it as written
        created = datetime.fromisoformat(created.replace("Z", "+00:00")).strftime(
            "%Y-%m-%d %H:%M %Z"
        ).strip()
    projection = meta.get("projection")
    if isinstance(projection, dict):
        projection = projection.get("method") or projection.get("name") or str(projection)
    rows = [
        ("Products", f"{len(catalog.items):,}"),
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
    return rows


def about_page(catalog: Catalog) -> html.Div:
    """About: what the recommendations are built from."""
    table = html.Table(
        html.Tbody(
            [html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in about_rows(catalog)]
        ),
        className="table about-table mb-0",
        id="about-table",
    )
    return html.Div(
        dbc.Row(
            dbc.Col(
                [
                    html.H1("How it works", className="h3"),
                    html.P(
                        "Every product photo was run through an image model; products whose "
                        "image features are closest are shown as look-alikes. Nothing here "
                        "uses text or purchase data: it is all in the pictures.",
                        className="text-muted",
                    ),
                    dbc.Card(table, body=True),
                ],
                lg=8,
            )
        ),
        className="about-page",
    )


def not_found_page(message: str = "There is no page at this address.") -> html.Div:
    """A friendly 404 page."""
    return html.Div(
        [
            html.Div("404", className="display-1 fw-bold text-muted"),
            html.H1("Nothing looks like this", className="h3"),
            html.P(message, className="text-muted", id="not-found-message"),
            dcc.Link("Browse the catalog", href="/", className="btn btn-primary"),
        ],
        className="not-found text-center py-5",
        id="not-found",
    )


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class Page:
    """A routable page. `path` is matched exactly, or as a prefix when it ends with "/"
    (the rest of the path is passed to `layout`). `label` puts it in the navbar
    (`short_label` instead on phones). `register_callbacks(app, catalog)` adds the page's
    callbacks."""

    path: str
    label: str | None
    layout: Callable[[Catalog, str, str], Any]
    register_callbacks: Callable[[Dash, Catalog], None] | None = None
    short_label: str | None = None

    def matches(self, pathname: str) -> str | None:
        """The rest of `pathname` after this page's path, or None if it does not match."""
        if self.path.endswith("/") and self.path != "/":
            return pathname[len(self.path) :] if pathname.startswith(self.path) else None
        return "" if pathname.rstrip("/") == self.path.rstrip("/") else None


STATIC_PAGES: tuple[Page, ...] = (
    Page("/", "Catalog", lambda c, rest, search: catalog_page(c, parse_catalog_query(search, c))),
    Page("/product/", None, lambda c, rest, search: product_page(c, unquote(rest.strip("/")))),
    Page("/explore", "Explore", lambda c, rest, search: explore_page(c)),
    Page("/about", "About", lambda c, rest, search: about_page(c)),
)


def render_page(
    catalog: Catalog, pathname: str | None, search: str | None = "",
    pages: Sequence[Page] = STATIC_PAGES,
) -> Any:
    """The page for a URL path (the router); unknown paths get the 404 page."""
    pathname = pathname or "/"
    for page in pages:
        rest = page.matches(pathname)
        if rest is not None:
            return page.layout(catalog, rest, search or "")
    return not_found_page()


def sync_catalog(
    catalog: Catalog, trigger: str | None, url_search: str | None, q: str | None,
    sort: str | None, chosen: dict[str, list[str] | None], page: int | None,
) -> tuple[Any, str, int, int, str, str, list[list[str]], Any]:
    """The catalog page's one callback, as a pure function.

    Triggered by the URL (back/forward): controls follow the URL. Triggered by a control:
    the URL follows the controls, and any change but the page number goes back to page 1.
    Returns (grid, count, n_pages, page, search text, sort, filter values per facet,
    new URL query string or no_update).
    """
    if trigger == "url":
        query = parse_catalog_query(url_search, catalog)
    else:
        query = make_query(catalog, q, chosen, sort, page if trigger == "page" else 1)
    body, n_pages, shown_page, count = catalog_results(catalog, query)
    query_string = catalog_query_string(query)
    new_search = no_update if trigger == "url" or query_string == (url_search or "") else (
        query_string
    )
    filter_values = [query.filter_values(f.name) for f in catalog.facets]
    return body, count, n_pages, shown_page, query.q, query.sort, filter_values, new_search


def clicked_product_path(click_data: dict[str, Any] | None, catalog: Catalog) -> str | None:
    """The product page to open for a click on the explore scatter (None: not a product)."""
    try:
        product_id = click_data["points"][0]["customdata"]  # type: ignore[index]
    except (TypeError, KeyError, IndexError):
        return None
    return product_href(product_id) if isinstance(product_id, str) and product_id in (
        catalog.index
    ) else None


# --------------------------------------------------------------------------- app


def create_app(
    folder: str | Path, extra_pages: Sequence[Page] = (), catalog: Catalog | None = None
) -> Dash:
    """Build the Dash app for a precomputed folder (raises PrecomputedError if unusable).

    `catalog` is the folder already loaded (dynamic mode reads the folder only once).
    """
    catalog = catalog if catalog is not None else Catalog.load(folder)
    pages = (*STATIC_PAGES, *extra_pages)
    name = str(catalog.meta.get("name") or "")
    app = Dash(
        __name__,
        title="lookalike",
        update_title=None,
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.catalog = catalog  # type: ignore[attr-defined]
    app.pages = pages  # type: ignore[attr-defined]
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            navbar(sorted(pages, key=lambda p: p.path == "/about"), name),  # About last
            dbc.Container(id="page-content", className="pb-5", fluid="xl"),
            html.Footer(
                dbc.Container(
                    f"{len(catalog.items):,} products · look-alikes by "
                    f"{(catalog.meta.get('model') or {}).get('name', 'an image model')}",
                    fluid="xl",
                ),
                className="site-footer",
            ),
        ]
    )
    _register_thumbs(app, catalog)

    @app.callback(
        Output("page-content", "children"),
        Input("url", "pathname"),
        State("url", "search"),
    )
    def _render(pathname: str | None, search: str | None) -> Any:
        return render_page(catalog, pathname, search, pages)

    facet_names = [f.name for f in catalog.facets]

    @app.callback(
        Output("catalog-grid", "children"),
        Output("catalog-count", "children"),
        Output("catalog-pagination", "max_value"),
        Output("catalog-pagination", "active_page"),
        Output("catalog-search", "value"),
        Output("catalog-sort", "value"),
        Output({"type": "catalog-filter", "attr": ALL}, "value"),
        Output("catalog-url", "search"),
        Input("catalog-url", "search"),
        Input("catalog-search", "value"),
        Input("catalog-sort", "value"),
        Input({"type": "catalog-filter", "attr": ALL}, "value"),
        Input("catalog-pagination", "active_page"),
        prevent_initial_call=True,
    )
    def _catalog(
        url_search: str | None, q: str | None, sort: str | None,
        filter_values: list[list[str] | None], page: int | None,
    ) -> tuple[Any, ...]:
        trigger = {"catalog-url": "url", "catalog-pagination": "page"}.get(
            ctx.triggered_id if isinstance(ctx.triggered_id, str) else "", "control"
        )
        ids = [item["id"]["attr"] for item in ctx.inputs_list[3]]
        chosen = dict(zip(ids, filter_values, strict=True))
        result = sync_catalog(catalog, trigger, url_search, q, sort, chosen, page)
        # Filter outputs follow the order of the filter components on the page.
        by_name = dict(zip(facet_names, result[6], strict=True))
        return (*result[:6], [by_name.get(a, []) for a in ids], result[7])

    @app.callback(
        Output("explore-graph", "figure"),
        Input("explore-colour", "value"),
        prevent_initial_call=True,
    )
    def _explore(attr: str | None) -> go.Figure:
        return figure_for(catalog, attr)

    @app.callback(
        Output("url", "pathname"),
        Input("explore-graph", "clickData"),
        prevent_initial_call=True,
    )
    def _explore_click(click_data: dict[str, Any] | None) -> Any:
        return clicked_product_path(click_data, catalog) or no_update

    for page in pages:
        if page.register_callbacks:
            page.register_callbacks(app, catalog)
    return app


def _register_thumbs(app: Dash, catalog: Catalog) -> None:
    """Serve thumbnails from the folder's thumbs/: only catalog ids, with caching headers."""

    @app.server.route("/thumbs/<product_id>.jpg")
    def thumb(product_id: str) -> Response:
        relative = catalog.thumb_path(product_id)
        if relative is None:
            abort(404)
        response = send_from_directory(catalog.folder, relative, max_age=THUMB_MAX_AGE,
                                       mimetype="image/jpeg")
        response.cache_control.public = True
        return response


# --------------------------------------------------------------------------- dynamic mode
# Search by photo. Everything that needs numpy, Pillow or TensorFlow (pipeline.search,
# pipeline.images, pipeline.models) is imported inside these functions, which run only
# when dynamic mode is on: static mode never imports them.

DYNAMIC_ENV = "LOOKALIKE_DYNAMIC"
MODEL_ENV = "LOOKALIKE_MODEL"
PRELOAD_ENV = "LOOKALIKE_PRELOAD"
SEARCH_PATH = "/search"
PREVIEW_SIDE = 320  # the uploaded photo is shown as a JPEG of at most this many pixels
MAX_REQUEST_BYTES = 16 * 2**20  # a 10 MB photo is 13.4 MB as base64 inside the callback
DYNAMIC_MODULES = ("numpy", "PIL", "keras")
log = logging.getLogger("lookalike")

# Runs in the browser when the search page appears. dcc.Upload drops a file that is not an
# image or is over `max_size` without telling anyone; this reports such a file to the
# server (photo-rejected.data), which answers with a message.
UPLOAD_GUARD_JS = """
function (id, maxBytes) {
    if (!window.lookalikeUploadGuard) {  // one document-level listener, whatever re-renders
        window.lookalikeUploadGuard = true;
        var check = function (target, files) {
            if (!files || !files.length || !target || !target.closest
                || !target.closest("#" + id)) { return; }
            var f = files[0];
            if ((f.type || "").indexOf("image/") !== 0 || f.size > maxBytes) {
                window.dash_clientside.set_props("photo-rejected", {data: {
                    name: f.name, size: f.size, type: f.type || "", at: Date.now()}});
            }
        };
        document.addEventListener("drop", function (e) {
            check(e.target, e.dataTransfer && e.dataTransfer.files);
        }, true);
        document.addEventListener("change", function (e) {
            check(e.target, e.target && e.target.files);
        }, true);
    }
    return window.dash_clientside.no_update;
}
"""


class DynamicModeError(RuntimeError):
    """Dynamic mode cannot start (packages missing); the message says what to install."""


def env_flag(name: str) -> bool:
    """Whether an environment variable is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def model_label(searcher: PhotoSearcher) -> str:
    """The catalog's model as a shopper-facing name ("vgg16 fc2", "mobilenet-....keras")."""
    meta = searcher.model_meta
    name = str(meta.get("name") or "the model").removeprefix("file:")
    builtin = name in ("vgg16", "resnet50") and meta.get("layer")
    return f"{name} {meta['layer']}" if builtin else name


def model_status(searcher: PhotoSearcher) -> str:
    """One line on the model's state, shown under the upload area."""
    return {
        "ready": f"Model ready: {model_label(searcher)}",
        "loading": "Loading the model (first search only)…",
        "failed": "The model failed to load; the server log says why.",
    }.get(searcher.state, f"The model ({model_label(searcher)}) loads on the first search.")


def loading_message(searcher: PhotoSearcher) -> Any:
    """What dcc.Loading shows while a search runs: a spinner, and the model load if pending."""
    text = (
        "Finding look-alikes…" if searcher.state == "ready"
        else "Loading the model (first search only)…"
    )
    return html.Div(
        [dbc.Spinner(color="secondary", size="sm", spinner_class_name="me-2"),
         html.Span(text, id="photo-loading-text")],
        className="photo-loading d-flex align-items-center",
    )


def search_placeholder(catalog: Catalog) -> html.Div:
    """The results area before any upload."""
    return html.Div(
        [
            html.Div("Your look-alikes will appear here", className="h5"),
            html.Div(
                f"We compare your photo with all {len(catalog.items):,} products in the catalog.",
                className="text-muted",
            ),
        ],
        className="empty-state text-center py-5",
        id="photo-placeholder",
    )


def upload_alert(message: str, filename: str | None = None, color: str = "warning") -> dbc.Alert:
    """A message about an upload, shown in place of the results."""
    heading = f"We couldn't search with “{filename}”" if filename else "We couldn't search"
    return dbc.Alert(
        [html.Div(heading, className="alert-heading fw-semibold"), html.Div(message)],
        color=color,
        id="photo-error",
        className="mb-0",
    )


def format_megabytes(size: float) -> str:
    """A file size for a message: "14.2 MB"."""
    return f"{size / 2**20:.1f} MB"


def rejected_upload_alert(info: dict[str, Any] | None, max_bytes: int) -> Any:
    """The message for a file the browser refused to upload (not an image, or too large)."""
    if not isinstance(info, dict):
        return no_update
    name = str(info.get("name") or "") or None
    mime = str(info.get("type") or "")
    size = info.get("size")
    if not mime.startswith("image/"):
        kind = f" ({mime})" if mime else ""
        message = f"That file is not an image{kind}. Please upload a JPEG, PNG or WebP photo."
    elif isinstance(size, int | float) and size > max_bytes:
        message = (f"The photo is {format_megabytes(size)}; photos can be at most "
                   f"{max_bytes // 2**20} MB.")
    else:
        message = "That file could not be uploaded."
    return upload_alert(message, name)


def photo_preview(data: bytes) -> str:
    """A small JPEG data URL of an uploaded photo (upright, RGB), for the results header.

    Shown from the decoded photo rather than the upload itself, so CMYK, 16-bit or TIFF
    photos (which browsers cannot show) preview too, and a 10 MB photo is not sent back.
    """
    from pipeline.images import load_image, thumbnail_jpeg
    from pipeline.search import UPLOAD_PIXELS

    img = load_image(data, draft_size=2 * PREVIEW_SIDE, max_pixels=UPLOAD_PIXELS)
    return "data:image/jpeg;base64," + base64.b64encode(
        thumbnail_jpeg(img, PREVIEW_SIDE, quality=80)
    ).decode("ascii")


def search_results(
    searcher: PhotoSearcher, catalog: Catalog, contents: str | None, filename: str | None
) -> Any:
    """The upload callback as a pure function: an upload (data URL) -> the results area.

    A photo gives its preview, the neighbour vote and the k most similar products as
    cards; a bad upload gives an alert with a message for the shopper. Nothing is kept
    between calls.
    """
    from pipeline.models import ModelError
    from pipeline.search import UploadError, decode_upload

    if not contents:
        return search_placeholder(catalog)
    was_ready = searcher.state == "ready"
    try:
        data = decode_upload(contents)
        result = searcher.search(data)
        preview = photo_preview(data)
    except UploadError as e:
        return upload_alert(str(e), filename)
    except ModelError as e:
        log.error("search by photo: %s", e)
        return upload_alert(f"The image model could not be loaded: {e}", filename, "danger")
    except Exception:  # a shopper gets a message, the operator the traceback
        log.exception("search by photo failed for %r", filename)
        return upload_alert("Something went wrong on our side. Please try another photo.",
                            filename, "danger")
    found = [(catalog.index[pid], score) for pid, score in result.neighbours
             if pid in catalog.index]
    best = found[0][1] if found else 0.0
    cards = [similar_card(catalog, i, score, rank, best, metric="cosine")
             for rank, (i, score) in enumerate(found, start=1)]
    summary: list[Any] = []
    if filename:
        summary.append(div(filename, className="photo-filename text-muted small text-truncate",
                           title=filename))
    if result.vote:
        attr, label, votes, k = result.vote
        summary.append(div(
            [wire("Span", HTML_NS, children="Looks like: ", className="text-muted"),
             wire("Strong", HTML_NS, children=label),
             wire("Span", HTML_NS, children=f" ({votes} of {k} neighbours)",
                  className="text-muted")],
            className="photo-vote h5 mb-1", id="photo-vote",
            title=f"{attribute_label(attr)} of the most similar products",
        ))
    t = result.timings_ms
    took = sum(t.values())
    summary.append(div(
        f"Compared with {len(catalog.items):,} products in {took:,.0f} ms "
        f"(photo {t.get('decode', 0):.0f} ms, model {t.get('embed', 0):,.0f} ms"
        f"{' including loading it' if not was_ready else ''}, "
        f"search {t.get('search', 0):.1f} ms)",
        className="text-muted small", id="photo-timings",
    ))
    header = div(
        [
            div(wire("Img", HTML_NS, src=preview, alt=filename or "your photo",
                     id="photo-preview"), className="photo-preview"),
            div(summary, className="photo-summary"),
        ],
        className="photo-header mb-4",
    )
    return div(
        [
            header,
            wire("H2", HTML_NS, children="Most similar products", className="h5 mb-1"),
            wire("P", HTML_NS, className="text-muted small mb-3",
                 children=f"Ranked by cosine similarity between image features: {MATCH_SCALE}"),
            div(grid(cards, "row-cols-2 row-cols-sm-3 row-cols-lg-4 row-cols-xl-5")
                if cards else wire("P", HTML_NS, children="No products to compare with."),
                id="photo-similar"),
        ],
        className="photo-results",
    )


def search_page(catalog: Catalog, searcher: PhotoSearcher) -> html.Div:
    """Search by photo: an upload area (click, drop, or a phone's camera) and the results."""
    from pipeline.search import MAX_UPLOAD_BYTES

    upload = dcc.Upload(
        id="photo-upload",
        accept="image/*",  # phones offer the camera as well as the gallery
        max_size=MAX_UPLOAD_BYTES,
        multiple=False,
        className="photo-drop",
        className_active="photo-drop active",
        className_reject="photo-drop rejected",
        children=html.Div(
            [
                html.Div(className="photo-drop-icon"),
                html.Div("Drop a photo here", className="fw-semibold"),
                html.Div(["or ", html.Span("choose one", className="photo-drop-link"),
                          " (on a phone: take one)"], className="small"),
                html.Div(f"JPEG, PNG or WebP · up to {MAX_UPLOAD_BYTES // 2**20}\u00a0MB",
                         className="small text-muted mt-2"),
            ],
            className="photo-drop-inner",
        ),
    )
    return html.Div(
        [
            html.H1("Search by photo", className="h3 mb-1"),
            html.P("Upload a product photo and we'll find what in the catalog looks most "
                   "like it.", className="text-muted mb-3"),
            dcc.Store(id="photo-rejected"),
            dbc.Row(
                [
                    dbc.Col(
                        [upload,
                         html.Div(model_status(searcher), id="photo-model-status",
                                  className="text-muted small mt-2")],
                        md=4, lg=3,
                    ),
                    dbc.Col(
                        dcc.Loading(
                            html.Div(search_placeholder(catalog), id="photo-results"),
                            id="photo-loading",
                            custom_spinner=loading_message(searcher),
                            overlay_style={"visibility": "visible", "opacity": 0.35},
                        ),
                        md=8, lg=9,
                    ),
                ],
                className="g-4",
            ),
        ],
        className="search-page",
    )


def search_by_photo_page(searcher: PhotoSearcher) -> Page:
    """The dynamic-mode page and its callbacks, for `create_app(extra_pages=...)`."""
    from pipeline.search import MAX_UPLOAD_BYTES

    def register(app: Dash, catalog: Catalog) -> None:
        @app.callback(
            Output("photo-results", "children"),
            Output("photo-upload", "contents"),
            Output("photo-model-status", "children"),
            Output("photo-loading", "custom_spinner"),
            Input("photo-upload", "contents"),
            Input("photo-rejected", "data"),
            State("photo-upload", "filename"),
            prevent_initial_call=True,
        )
        def _search(contents: str | None, rejected: dict[str, Any] | None,
                    filename: str | None) -> tuple[Any, ...]:
            if ctx.triggered_id == "photo-rejected":
                body = rejected_upload_alert(rejected, MAX_UPLOAD_BYTES)
            else:
                body = search_results(searcher, catalog, contents, filename)
            # Clearing contents lets the same file be uploaded again and frees the browser's copy.
            return body, None, model_status(searcher), loading_message(searcher)

        app.clientside_callback(
            UPLOAD_GUARD_JS,
            Output("photo-rejected", "data"),
            Input("photo-upload", "id"),
            State("photo-upload", "max_size"),
        )

    return Page(SEARCH_PATH, "Search by photo", lambda c, rest, search: search_page(c, searcher),
                register, short_label="Photo")


def repo_relative_model(pre: Precomputed) -> Path | None:
    """The recorded model path read from the repository root, when it is relative and not
    found from the current directory (the bundled demo records ../shared/models/...)."""
    recorded = (pre.meta.get("model") or {}).get("path")
    if not recorded or Path(recorded).is_absolute() or Path(recorded).is_file():
        return None
    candidate = ROOT / recorded
    return candidate if candidate.is_file() else None


def create_dynamic_app(
    folder: str | Path, model_path: str | Path | None = None, preload: bool = False
) -> Dash:
    """create_app plus the search-by-photo page, with one PhotoSearcher for the process.

    The model file is checked against meta.json here (ModelError if it is missing or
    differs); `preload` also loads it now instead of on the first search. Raises
    PrecomputedError, ModelError or DynamicModeError, each with a one-line message.
    """
    missing = [m for m in DYNAMIC_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise DynamicModeError(
            f"dynamic mode needs {', '.join(missing)}: pip install -e \".[dynamic]\""
        )
    from pipeline.search import PhotoSearcher

    if model_path is not None and not Path(model_path).is_file():
        raise DynamicModeError(f"model file {model_path} not found (--model / ${MODEL_ENV})")
    pre = read_precomputed(folder)
    searcher = PhotoSearcher(pre, model_path or repo_relative_model(pre))
    if preload:
        searcher.preload()
    app = create_app(folder, extra_pages=(search_by_photo_page(searcher),),
                     catalog=Catalog.from_precomputed(pre))
    app.searcher = searcher  # type: ignore[attr-defined]
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    return app


# --------------------------------------------------------------------------- entry points


def precomputed_folder(option: str | None = None) -> Path:
    """The folder to serve: the command-line option, else $LOOKALIKE_PRECOMPUTED, else the demo."""
    chosen = option or os.environ.get(ENV_VAR) or DEFAULT_FOLDER
    return Path(chosen)


def build_app(
    folder: str | Path, dynamic: bool = False, model_path: str | Path | None = None,
    preload: bool = False,
) -> Dash:
    """The app to serve; raises AppStartError with a one-line message if it cannot start."""
    if not dynamic:
        try:
            return create_app(folder)
        except PrecomputedError as e:
            raise AppStartError(f"lookalike: cannot serve {folder}: {e}") from None
    try:
        from pipeline.models import ModelError
    except ImportError:  # numpy missing: create_dynamic_app names what to install
        ModelError = DynamicModeError  # noqa: N806
    try:
        return create_dynamic_app(folder, model_path, preload)
    except PrecomputedError as e:
        raise AppStartError(f"lookalike: cannot serve {folder}: {e}") from None
    except (ModelError, DynamicModeError) as e:
        message = " ".join(str(e).split())  # Keras errors can span lines
        raise AppStartError(
            f"lookalike: cannot search by photo in {folder}: {message}"
        ) from None


class AppStartError(Exception):
    """The app cannot start; the message is the one line to print."""


def create_app_or_exit(
    folder: str | Path, dynamic: bool = False, model_path: str | Path | None = None,
    preload: bool = False,
) -> Dash:
    """build_app, but a start-up problem ends the process with a one-line message."""
    try:
        return build_app(folder, dynamic, model_path, preload)
    except AppStartError as e:
        raise SystemExit(str(e)) from None


_app: Dash | None = None


def building_in_gunicorn_master() -> bool:
    """Whether gunicorn's master is importing the app (`--preload`), to fork workers later.

    TensorFlow does not survive a fork (a worker forked after the model was loaded hangs
    on its first search), so then the model is loaded in each worker right after the fork.
    """
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_filename.endswith(os.path.join("gunicorn", "arbiter.py")):
            return True
        frame = frame.f_back
    return False


def preload_in_worker(searcher: PhotoSearcher) -> None:
    """Load the model in a freshly forked worker; a failure is logged, searches then say so."""
    started = time.perf_counter()
    try:
        searcher.preload()
    except Exception as e:
        print(f"lookalike: worker {os.getpid()}: model failed to load: "
              f"{' '.join(str(e).split())}", file=sys.stderr)
        return
    print(f"lookalike: worker {os.getpid()}: model loaded in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)


def __getattr__(name: str) -> Any:
    """`app.server` / `app.app` for gunicorn, built on first use from the environment.

    $LOOKALIKE_PRECOMPUTED picks the folder; $LOOKALIKE_DYNAMIC=1 adds search by photo,
    with $LOOKALIKE_MODEL (model file) and $LOOKALIKE_PRELOAD=1 (load the model now).
    Importing this module (tests, tools) loads nothing; `gunicorn app:server` does.
    """
    global _app
    if name in ("server", "app"):
        if _app is None:
            preload = env_flag(PRELOAD_ENV)
            after_fork = preload and building_in_gunicorn_master()
            try:
                _app = build_app(precomputed_folder(), env_flag(DYNAMIC_ENV),
                                 os.environ.get(MODEL_ENV) or None, preload and not after_fork)
            except AppStartError as e:
                print(e, file=sys.stderr)
                # 3 is gunicorn's "worker failed to boot": it stops instead of respawning.
                raise SystemExit(3) from None
            searcher = getattr(_app, "searcher", None)
            if after_fork and searcher is not None:
                os.register_at_fork(after_in_child=lambda: preload_in_worker(searcher))
        return _app.server if name == "server" else _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of `python app.py`."""
    parser = argparse.ArgumentParser(description="Serve a lookalike precomputed folder.")
    parser.add_argument(
        "--precomputed",
        metavar="FOLDER",
        help=f"precomputed folder to serve (default: ${ENV_VAR}, else precomputed/demo)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on")
    parser.add_argument("--debug", action="store_true", help="Dash dev tools and reloader")
    parser.add_argument(
        "--dynamic", action="store_true", default=env_flag(DYNAMIC_ENV),
        help=f"add search by photo (loads the catalog's model; default: ${DYNAMIC_ENV})",
    )
    parser.add_argument(
        "--model", metavar="PATH", default=os.environ.get(MODEL_ENV) or None,
        help="the catalog's Keras model file, if not at the path recorded in meta.json "
             f"(default: ${MODEL_ENV})",
    )
    parser.add_argument(
        "--preload-model", action="store_true", default=env_flag(PRELOAD_ENV),
        help=f"load the model at start-up, not on the first search (default: ${PRELOAD_ENV})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the development server."""
    args = parse_args(argv)
    if not args.dynamic and (args.model or args.preload_model):
        raise SystemExit("lookalike: --model and --preload-model need --dynamic")
    folder = precomputed_folder(args.precomputed)
    started = time.perf_counter()
    dash_app = create_app_or_exit(folder, args.dynamic, args.model, args.preload_model)
    mode = ""
    if args.dynamic:
        searcher = dash_app.searcher  # type: ignore[attr-defined]
        mode = (f"; search by photo at {SEARCH_PATH} with {model_label(searcher)} ("
                + (f"loaded in {time.perf_counter() - started:.1f} s)" if searcher.loaded
                   else "loads on the first search)"))
    print(f"lookalike: serving {folder} ({len(dash_app.catalog.items):,} products) "
          f"on http://{args.host}:{args.port}{mode}", file=sys.stderr)
    dash_app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
