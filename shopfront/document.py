"""The HTML document the server sends for a page URL, before any JavaScript runs.

Dash sends one document for every path, titled alike, with a bare "Loading..." until
its scripts have run (6.8 s on a slow phone) and HTTP 200 even for a page that does not
exist. `ShopDash` sends per URL: the page's HTTP status (404 for unknown products and
paths), `<html lang>`, its own `<title>`, a meta description, OpenGraph and Twitter tags
(so a shared product link shows a preview), and the shop's frame with the page itself
rendered to static HTML, which React replaces when it starts. A URL that spells a page
another way (`/product/ID/`) gets a permanent redirect to the page's own URL instead.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urljoin

from dash import Dash
from dash.development.base_component import Component
from flask import Response, g, redirect, request

from .router import Head, View
from .text import is_safe_link, without_controls

BRAND = "lookalike"
MAX_DEPTH = 40
VOID_TAGS = {"img", "br", "hr", "input", "meta", "link"}
HTML_NAMESPACE = "dash_html_components"
# Components that only make sense once JavaScript runs: left out of the static frame.
SKIPPED = {"Location", "Store", "Graph", "Dropdown", "Upload", "Pagination", "Select",
           "Loading", "Input", "Spinner", "Tooltip"}
ATTRIBUTES = {"className": "class", "htmlFor": "for", "tabIndex": "tabindex"}
PASSED = {"id", "href", "src", "alt", "title", "role", "target", "rel", "scope", "loading",
          "htmlFor", "tabIndex"}
LINKS = {"href", "src"}  # URLs: only paths and http(s), as a live link or image
BLANK_URL = "about:blank"  # what Dash's renderer puts in place of a javascript: link
REDIRECT_STATUS = 308  # permanent, and the method is kept


def escape(text: str) -> str:
    """Text for HTML content or a quoted attribute: escaped, control characters removed."""
    return html.escape(without_controls(text))

# Dash's index with `lang`; its scripts in a <div>, not Dash's <footer>, which would be a
# second "contentinfo" landmark beside the shop's own footer.
INDEX_STRING = """<!DOCTYPE html>
<html lang="{%lang%}">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <div>
            {%config%}
            {%scripts%}
            {%renderer%}
        </div>
    </body>
</html>"""


def _style(style: Any) -> str:
    if not isinstance(style, Mapping):
        return ""
    return ";".join(f"{k}:{v}" for k, v in style.items()
                    if isinstance(v, str | int | float))


def to_html(node: Any, depth: int = 0) -> str:
    """Static HTML for a Dash layout (Component objects or wire-format dicts), all text
    escaped. Interactive components are left out; Bootstrap components become divs with
    their classes, so the frame looks like the page React will draw."""
    if node is None or depth > MAX_DEPTH:
        return ""
    if isinstance(node, str | int | float):
        return escape(str(node))
    if isinstance(node, list | tuple):
        return "".join(to_html(child, depth + 1) for child in node)
    if isinstance(node, Component):
        node = node.to_plotly_json()
    if not isinstance(node, Mapping):
        return ""
    kind, namespace = node.get("type"), node.get("namespace")
    props = node.get("props") or {}
    if kind in SKIPPED:
        return ""
    if namespace == HTML_NAMESPACE:
        tag = str(kind).lower()
    elif kind in ("Link", "NavLink"):
        tag = "a"
    else:
        tag = {"Navbar": "nav"}.get(str(kind), "div")
    attributes = []
    classes = str(props.get("className") or "")
    if kind == "Row":
        classes = f"row {classes}"
    elif kind == "Col":
        classes = f"col {classes}"
    elif kind == "Container":
        classes = f"container-{props.get('fluid')} {classes}" if isinstance(
            props.get("fluid"), str) else f"container {classes}"
    elif kind == "Card":
        classes = f"card card-body {classes}"
    elif kind == "Navbar":
        classes = f"navbar navbar-expand navbar-dark {classes}"
    elif kind == "Nav":
        classes = f"nav navbar-nav {classes}"
    elif kind == "NavItem":
        classes = f"nav-item {classes}"
    elif kind == "NavLink":
        classes = f"nav-link {classes}"
    if classes.strip():
        attributes.append(f'class="{escape(classes.strip())}"')
    if kind == "Navbar" and isinstance(props.get("color"), str):
        attributes.append(f'style="background-color:{escape(props["color"])}"')
    for key, value in props.items():
        name = ATTRIBUTES.get(key, key)
        if key in PASSED or key.startswith("aria-"):
            if isinstance(value, str):
                if key in LINKS and not is_safe_link(value):
                    value = BLANK_URL
                attributes.append(f'{name}="{escape(value)}"')
        elif key == "style" and _style(value):
            attributes.append(f'style="{escape(_style(value))}"')
    opening = f"<{tag}{' ' if attributes else ''}{' '.join(attributes)}>"
    if tag in VOID_TAGS:
        return opening
    return f"{opening}{to_html(props.get('children'), depth + 1)}</{tag}>"


def head_tags(head: Head, site: str, page_url: str | None) -> str:
    """Description, OpenGraph and Twitter card tags for a page. Without `page_url` (no
    host names configured) there is no og:url, and og:image is a path on the site."""
    tags = [("name", "description", head.description)] if head.description else []
    tags += [("property", "og:title", head.title), ("property", "og:site_name", site),
             ("property", "og:type", "product" if head.image else "website")]
    if page_url:
        tags.append(("property", "og:url", page_url))
    if head.description:
        tags.append(("property", "og:description", head.description))
    if head.image and is_safe_link(head.image):
        tags += [("property", "og:image", urljoin(page_url or "", head.image)),
                 ("name", "twitter:card", "summary")]
    if head.status != 200:
        tags.append(("name", "robots", "noindex"))
    return "\n        ".join(
        f'<meta {kind}="{escape(key)}" content="{escape(value)}">'
        for kind, key, value in tags)


def request_target(environ: dict[str, Any], path: str) -> str:
    """The requested path as the client wrote it, still percent-encoded (as the browser's
    `location.pathname`, which the client-side router sees), so a page decodes it once.

    gunicorn and Werkzeug keep it in RAW_URI / REQUEST_URI (a latin-1 str of the bytes);
    `path` (already decoded) is quoted again where neither is there."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    raw = raw.split("?", 1)[0]
    if not raw.startswith("/"):  # absent, or an absolute-form target (http://host/path)
        return quote(path, safe="/")
    return quote(raw.encode("latin-1").decode("utf-8", "surrogateescape"),
                 safe="/%!$&'()*+,;=:@~", errors="surrogateescape")


class ShopDash(Dash):
    """Dash with a document per URL (status, title, head tags, a static first frame)."""

    def __init__(self, view_for: Callable[[str, str], View], frame: Callable[[Any], str],
                 site_name: str = BRAND, lang: str = "en", absolute_urls: bool = False,
                 **kwargs: Any) -> None:
        """`absolute_urls`: the Host header is one of the configured host names (pinned by
        `hosts.PinnedHost`), so page URLs may name it in OpenGraph tags."""
        super().__init__(**kwargs)
        self.index_string = INDEX_STRING.replace("{%lang%}", html.escape(lang))
        self._view_for = view_for
        self._frame = frame
        self._site_name = site_name
        self._absolute_urls = absolute_urls

    def page_title(self, head: Head) -> str:
        """`<title>` of a page: "Page · Shop"."""
        return f"{head.title} · {self._site_name}" if head.title else self._site_name

    def index(self, *args: Any, **kwargs: Any) -> Response:
        """The document for the requested URL, with the page's HTTP status; a redirect
        to the page's own URL for another spelling of it."""
        g.shop_view = self._view_for(request_target(request.environ, request.path),
                                     request.query_string.decode("latin-1"))
        if g.shop_view.head.location:  # always a path of this site, built by a page
            return redirect(g.shop_view.head.location, REDIRECT_STATUS)  # type: ignore[return-value]
        body = super().index(*args, **kwargs)
        return Response(body, status=g.shop_view.head.status, mimetype="text/html")

    def interpolate_index(self, **kwargs: Any) -> str:
        """Dash's index with this page's title, head tags and static frame."""
        view: View = g.shop_view
        page_url = request.url if self._absolute_urls else None
        kwargs["title"] = escape(self.page_title(view.head))
        kwargs["metas"] = (kwargs.get("metas", "") + "\n        "
                           + head_tags(view.head, self._site_name, page_url))
        kwargs["app_entry"] = (f'<div id="react-entry-point">{self._frame(view.layout)}'
                               "</div>")
        kwargs["scripts"] = without_unused_scripts(kwargs.get("scripts", ""))
        return super().interpolate_index(**kwargs)


UNUSED_SCRIPTS = (
    "/deps/polyfill@",  # 96 KB of ES5 shims every browser Dash 4 supports has built in
    "/dash/dash_table/",  # DataTable: no page uses it
)


def without_unused_scripts(scripts: str) -> str:
    """Dash's script tags without the ones this app never needs (38 KB compressed)."""
    return "\n".join(line for line in scripts.splitlines()
                     if not any(unused in line for unused in UNUSED_SCRIPTS))
