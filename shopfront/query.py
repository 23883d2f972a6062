"""The catalog page's state as a URL query string (`/?q=red&gender=Men&page=2`), and back.

Everything here is bounded: whatever a request sends, a query keeps at most MAX_QUERY_CHARS
of search text, MAX_WORDS words, MAX_VALUES_PER_FILTER values per attribute (only values
the attribute has) and a page number below MAX_PAGE, so its cost is linear in the input
and small.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

RESERVED_QUERY_KEYS = ("q", "sort", "page")
SORTS = {
    "featured": "Featured",
    "price-asc": "Price: low to high",
    "price-desc": "Price: high to low",
    "title": "Name: A to Z",
}
MAX_QUERY_CHARS = 200
MAX_WORDS = 12
MAX_VALUES_PER_FILTER = 50
MAX_PAGE = 1_000_000
MAX_URL_QUERY = 8192  # a longer query string is cut before parsing


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


def clean_text(value: Any) -> str:
    """A search text: a string, cut to MAX_QUERY_CHARS and MAX_WORDS words ("" otherwise)."""
    if not isinstance(value, str):
        return ""
    words = value[: MAX_QUERY_CHARS * 2].split()[:MAX_WORDS]
    return " ".join(words)[:MAX_QUERY_CHARS].strip()


def clean_page(value: Any) -> int:
    """A page number >= 1 from an int or a string of ASCII digits (1 otherwise)."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 7):
            return 1
        value = int(value)
    if isinstance(value, int) and 1 <= value < MAX_PAGE:
        return value
    return 1


def clean_values(value: Any, allowed: Container[str]) -> tuple[str, ...]:
    """Distinct allowed string values in the given order, at most MAX_VALUES_PER_FILTER."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    seen: dict[str, None] = {}
    for v in value[: MAX_VALUES_PER_FILTER * 4]:
        if isinstance(v, str) and v in allowed and v not in seen:
            seen[v] = None
            if len(seen) == MAX_VALUES_PER_FILTER:
                break
    return tuple(seen)


def make_query(
    facets: Mapping[str, Container[str]], q: Any, chosen: Any, sort: Any, page: Any,
) -> CatalogQuery:
    """A normalised CatalogQuery from untrusted parts: `facets` maps each filterable
    attribute to its values; filters come out in facet order, unknown ones dropped."""
    chosen = chosen if isinstance(chosen, Mapping) else {}
    filters = []
    for name, allowed in facets.items():
        values = clean_values(chosen.get(name), allowed)
        if values:
            filters.append((name, values))
    return CatalogQuery(
        q=clean_text(q),
        filters=tuple(filters),
        sort=sort if isinstance(sort, str) and sort in SORTS else "featured",
        page=clean_page(page),
    )


def parse_catalog_query(search: Any, facets: Mapping[str, Container[str]]) -> CatalogQuery:
    """Parse the catalog page's URL query string ("?q=shirt&gender=Men&page=2")."""
    text = search if isinstance(search, str) else ""
    pairs = parse_qsl(text[:MAX_URL_QUERY].lstrip("?"), keep_blank_values=False)
    q: str = ""
    sort: str = "featured"
    page: str = "1"
    chosen: dict[str, list[str]] = {}
    for key, value in pairs:
        if key == "q":
            q = value
        elif key == "sort":
            sort = value
        elif key == "page":
            page = value
        elif key in facets:
            chosen.setdefault(key, []).append(value)
    return make_query(facets, q, chosen, sort, page)


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
