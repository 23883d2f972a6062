"""The friendly 404 page (HTTP status 404 for the server-rendered document too)."""

from __future__ import annotations

from dash import dcc, html

from ..router import Head, View
from ..shop import Shop

DEFAULT_MESSAGE = "There is no page at this address."


def not_found_view(shop: Shop | None = None, message: str = DEFAULT_MESSAGE) -> View:
    """The 404 view: a message and a way back to the catalog."""
    layout = html.Div(
        [
            html.Div("404", className="display-1 fw-bold text-muted"),
            html.H1("Nothing looks like this", className="h3"),
            html.P(message, className="text-muted", id="not-found-message"),
            dcc.Link("Browse the catalog", href="/", className="btn btn-primary"),
        ],
        className="not-found text-center py-5",
        id="not-found",
    )
    return View(layout, Head("Page not found", message, status=404))
