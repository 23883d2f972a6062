"""The app factory: a Shop and its pages -> a hardened Dash app."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, dcc, html

from .components import navbar
from .document import BRAND, ShopDash, to_html
from .hosts import HOSTS_ENV, parse_hosts
from .pages import STATIC_PAGES, catalog
from .pages.not_found import not_found_view
from .router import Page, View, route
from .shop import Shop
from .web import STATIC_MAX_REQUEST_BYTES, harden, serve_thumbnails

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SEARCH_PATH = "/search"  # dynamic mode's page (pages/search.py, not imported here)


@dataclass(frozen=True)
class ShopFront:
    """A built shop front: the Dash app, the shop it serves and its pages."""

    app: ShopDash
    shop: Shop
    pages: tuple[Page, ...]

    @property
    def server(self) -> Any:
        """The Flask server (WSGI app) for gunicorn."""
        return self.app.server


def render_page(shop: Shop, pages: Sequence[Page], pathname: Any, search: Any = "") -> View:
    """The view for a URL path (the router with the 404 page)."""
    return route(shop, pages, not_found_view, pathname, search)


def footer(shop: Shop) -> html.Footer:
    """The site footer."""
    return html.Footer(dbc.Container(f"{shop.n_products:,} products", fluid="xl"),
                       className="site-footer")


MAIN_ID = "main"


def skip_link() -> html.A:
    """"Skip to content": the first thing Tab reaches, shown only while focused
    (assets/shopfront.js moves focus to <main> without touching the URL)."""
    return html.A("Skip to content", href=f"#{MAIN_ID}",
                  className="skip-link visually-hidden-focusable")


def main(content: Any) -> html.Main:
    """The page's <main> landmark, focusable from script and the skip link only."""
    return html.Main(content, id=MAIN_ID, tabIndex="-1")


def create_app(
    shop: Shop | str | Path, extra_pages: Sequence[Page] = (),
    max_request_bytes: int = STATIC_MAX_REQUEST_BYTES,
) -> ShopFront:
    """Build the shop front for a Shop (or a precomputed folder, opened here).

    `extra_pages` add pages with their callbacks (dynamic mode's search by photo).
    Raises PrecomputedError, with a one-line message, for an unusable folder, and
    HostConfigError for an unusable $LOOKALIKE_HOSTS.
    """
    hosts = parse_hosts(os.environ.get(HOSTS_ENV))
    shop = shop if isinstance(shop, Shop) else Shop(shop)
    pages = (*STATIC_PAGES, *extra_pages)
    if any(p.path == SEARCH_PATH for p in extra_pages):  # offer it on the catalog too
        pages = tuple(catalog.PHOTO_SEARCH_PAGE if p is catalog.PAGE else p for p in pages)
    in_navbar = sorted(pages, key=lambda p: p.path == "/about")  # About last
    top = navbar(in_navbar, shop.name)

    def frame(layout: Any) -> str:
        return to_html([skip_link(), top,
                        main(dbc.Container(layout, className="pb-5", fluid="xl")),
                        footer(shop)])

    app = ShopDash(
        view_for=lambda path, search: render_page(shop, pages, path, search),
        frame=frame,
        site_name=shop.name or BRAND,
        absolute_urls=bool(hosts),
        name=__name__,
        title=shop.name or BRAND,
        update_title=None,
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.layout = html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="page-title"),
        skip_link(),
        top,
        main(dbc.Container(id="page-content", className="pb-5", fluid="xl")),
        footer(shop),
    ])

    @app.callback(
        Output("page-content", "children"),
        Output("page-title", "data"),
        Input("url", "pathname"),
        State("url", "search"),
    )
    def _render(pathname: Any, search: Any) -> tuple[Any, str]:
        view = render_page(shop, pages, pathname, search)
        return view.layout, app.page_title(view.head)

    app.clientside_callback(
        ClientsideFunction(namespace="shopfront", function_name="set_title"),
        Output("page-title", "id"),
        Input("page-title", "data"),
    )
    for page in pages:
        if page.register_callbacks:
            page.register_callbacks(app, shop)
        if page.warm:
            page.warm(shop)
    serve_thumbnails(app.server, shop)
    harden(app.server, app.csp_hashes(), shop.external_thumb_origins(), max_request_bytes,
           hosts)
    return ShopFront(app, shop, pages)
