"""Callback requests as the browser sends them, for tests that go through HTTP."""

from __future__ import annotations

from typing import Any

CALLBACK_URL = "/_dash-update-component"


def render_payload(pathname: Any, search: Any = "") -> dict[str, Any]:
    """The router callback's request for a URL."""
    return {
        "output": "..page-content.children...page-title.data..",
        "outputs": [{"id": "page-content", "property": "children"},
                    {"id": "page-title", "property": "data"}],
        "inputs": [{"id": "url", "property": "pathname", "value": pathname}],
        "state": [{"id": "url", "property": "search", "value": search}],
        "changedPropIds": ["url.pathname"],
    }


CATALOG_OUTPUT = (
    '..catalog-grid.children...catalog-count.children...catalog-pagination.children..'
    '.catalog-search.value...catalog-sort.value...{"attr":["ALL"],"type":"catalog-fil'
    'ter"}.value...catalog-url.search...page-title.data@7afdc85defaca771214d69e479300'
    'fc4244be62e4fd32ec4d9ef2b618362c8f5...{"attr":["ALL"],"type":"catalog-filter"}.op'
    'tions..'
)


def catalog_payload(
    facets: list[str], q: Any = "", sort: Any = "featured", values: Any = None,
    url_search: Any = "", changed: str = "catalog-search.value",
    output: str = CATALOG_OUTPUT, pathname: Any = "/",
) -> dict[str, Any]:
    """The catalog callback's request; `values` maps facet name -> selected values.
    `output` is the callback's id from /_dash-dependencies (page-title.data has a hash)."""
    values = values or {}
    filters = [{"id": {"type": "catalog-filter", "attr": name}, "property": "value",
                "value": values.get(name, [])} for name in facets]
    return {
        "output": output,
        "outputs": [
            {"id": "catalog-grid", "property": "children"},
            {"id": "catalog-count", "property": "children"},
            {"id": "catalog-pagination", "property": "children"},
            {"id": "catalog-search", "property": "value"},
            {"id": "catalog-sort", "property": "value"},
            [{"id": f["id"], "property": "value"} for f in filters],
            {"id": "catalog-url", "property": "search"},
            {"id": "page-title", "property": "data"},
            [{"id": f["id"], "property": "options"} for f in filters],
        ],
        "inputs": [
            {"id": "catalog-url", "property": "search", "value": url_search},
            {"id": "catalog-search", "property": "value", "value": q},
            {"id": "catalog-sort", "property": "value", "value": sort},
            filters,
        ],
        "state": [{"id": "catalog-url", "property": "pathname", "value": pathname}],
        "changedPropIds": [changed],
    }


def explore_payload(attr: Any) -> dict[str, Any]:
    """The explore page's colour-by request."""
    return {
        "output": "explore-graph.figure",
        "outputs": {"id": "explore-graph", "property": "figure"},
        "inputs": [{"id": "explore-colour", "property": "value", "value": attr}],
        "state": [],
        "changedPropIds": ["explore-colour.value"],
    }
