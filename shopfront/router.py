"""The small router: URL path -> page view (layout + head), shared by Dash and the server.

Dash's `pages` keeps a process-global registry (several apps in one process, as the tests
build, would share it) and re-renders the whole page on every query-string change (the
catalog page's filters live there). Borrowed from it instead: a title and head per page,
and pages that own their callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dash import Dash

    from .shop import Shop

MAX_PATH_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Head:
    """What a page puts in the document head, and the HTTP status of its URL."""

    title: str
    description: str = ""
    image: str | None = None  # absolute URL or a path on this site
    status: int = 200
    location: str | None = None  # the canonical path (and query) this URL redirects to


@dataclass(frozen=True, slots=True)
class View:
    """A page for one URL: its layout and its head."""

    layout: Any
    head: Head


@dataclass(frozen=True)
class Page:
    """A routable page. `path` is matched exactly, or as a prefix when it ends with "/"
    (the rest of the path goes to `view`). `label` puts it in the navbar (`short_label`
    on phones). `register_callbacks(app, shop)` adds the page's own callbacks; `warm(shop)`
    does costly work once at start-up (in gunicorn's master, shared by the workers)."""

    path: str
    label: str | None
    view: Callable[[Shop, str, str], View]
    register_callbacks: Callable[[Dash, Shop], None] | None = None
    short_label: str | None = None
    warm: Callable[[Shop], None] | None = None  # work done once at start-up, before forking

    def matches(self, pathname: str) -> str | None:
        """The rest of `pathname` after this page's path, or None if it does not match."""
        if self.path.endswith("/") and self.path != "/":
            return pathname[len(self.path):] if pathname.startswith(self.path) else None
        return "" if pathname.rstrip("/") == self.path.rstrip("/") else None


def route(
    shop: Shop, pages: Sequence[Page], not_found: Callable[[Shop], View],
    pathname: Any, search: Any = "",
) -> View:
    """The view for a URL path; unknown paths (and junk) get the not-found view."""
    if not isinstance(pathname, str) or len(pathname) > MAX_PATH_CHARS:
        return not_found(shop)
    search = search if isinstance(search, str) else ""
    for page in pages:
        rest = page.matches(pathname or "/")
        if rest is not None:
            return page.view(shop, rest, search)
    return not_found(shop)
