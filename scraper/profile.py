"""Shop profiles: a small TOML file per shop, checked strictly when loaded.

Unknown keys are an error naming the key (a typo must never silently disable a
selector), selectors are compiled up front, and ``{base}`` in URLs is replaced by
``base_url`` (or ``--base-url``) so one profile works wherever its shop is served.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import soupsieve

from scraper import ScraperError

DEFAULT_USER_AGENT = "lookalike-scraper/0.1 (+https://github.com/lookalike/lookalike)"
# Lazy-loading shops put the real URL in data-src/data-srcset; srcset holds the largest.
DEFAULT_IMAGE_ATTRS = ("data-srcset", "srcset", "data-src", "data-original", "src")
RESERVED_COLUMNS = {"id", "image", "title", "price", "currency", "product_url", "image_url",
                    "sha256"}
_ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
FIELD_NAMES = ("id", "title", "price", "currency", "link", "image")


class ProfileError(ScraperError):
    """The profile file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class FieldSpec:
    """Where one value lives: a CSS selector (None = the card/page element itself) and
    the attributes to try in order (empty = the element's text)."""

    selector: str | None
    attrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Politeness:
    """Limits that keep a crawl from hammering a shop."""

    delay: float = 1.0
    user_agent: str = DEFAULT_USER_AGENT
    contact: str = ""
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 120.0
    max_pages: int = 200
    max_image_bytes: int = 15_000_000
    max_redirects: int = 5
    max_download_seconds: float = 120.0

    def user_agent_header(self) -> str:
        """The User-Agent sent with every request, with the contact when one is set."""
        if self.contact:
            return f"{self.user_agent} contact: {self.contact}"
        return self.user_agent


@dataclass(frozen=True)
class Profile:
    """A parsed, validated shop profile."""

    name: str
    start_urls: tuple[str, ...] = ()
    base_url: str | None = None
    next_selector: str | None = None
    url_template: str | None = None
    page_range: tuple[int, int] | None = None
    card: str | None = None
    listing_fields: dict[str, FieldSpec] = field(default_factory=dict)
    listing_attributes: dict[str, FieldSpec] = field(default_factory=dict)
    fetch_product_page: bool = False
    product_fields: dict[str, FieldSpec] = field(default_factory=dict)
    product_attributes: dict[str, FieldSpec] = field(default_factory=dict)
    politeness: Politeness = field(default_factory=Politeness)

    def listing_urls(self) -> list[str]:
        """The first listing URLs to fetch: start URLs, then the URL template's pages."""
        urls = list(self.start_urls)
        if self.url_template and self.page_range:
            first, last = self.page_range
            urls += [self.url_template.replace("{page}", str(n)) for n in range(first, last + 1)]
        return urls


_TOP_KEYS = {"name", "base_url", "start_urls", "pagination", "listing", "product_page",
             "politeness"}
_PAGINATION_KEYS = {"next", "url_template", "pages", "max_pages"}
_LISTING_KEYS = {"card", *FIELD_NAMES, "attributes"}
_PRODUCT_KEYS = {"fetch", *FIELD_NAMES, "attributes"}
_FIELD_KEYS = {"selector", "attr"}
_POLITENESS_KEYS = set(Politeness.__dataclass_fields__)


def _check_keys(table: dict[str, Any], allowed: set[str], where: str, src: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            also = f" (did you mean '{hint[0]}'?)" if hint else ""
            name = f"{where}.{key}" if where else key
            raise ProfileError(f"{src}: unknown key '{name}'{also}; "
                               f"allowed here: {', '.join(sorted(allowed))}")


def _table(value: Any, where: str, src: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"{src}: '{where}' must be a table, got {type(value).__name__}")
    return value


def _selector(value: Any, where: str, src: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{src}: '{where}' must be a non-empty CSS selector string")
    try:
        soupsieve.compile(value)
    except Exception as exc:  # soupsieve raises SelectorSyntaxError and others
        first = str(exc).splitlines()[0]
        raise ProfileError(
            f"{src}: '{where}' is not a valid CSS selector {value!r}: {first}") from None
    return value


def _field(value: Any, name: str, where: str, src: str) -> FieldSpec:
    default_attrs: tuple[str, ...] = ()
    if name == "link":
        default_attrs = ("href",)
    elif name == "image":
        default_attrs = DEFAULT_IMAGE_ATTRS
    if isinstance(value, str):
        return FieldSpec(_selector(value, where, src), default_attrs)
    table = _table(value, where, src)
    _check_keys(table, _FIELD_KEYS, where, src)
    sel = table.get("selector")
    selector = None if sel in (None, "") else _selector(sel, f"{where}.selector", src)
    attr = table.get("attr", list(default_attrs))
    attrs = [attr] if isinstance(attr, str) else attr
    if not isinstance(attrs, list) or not all(isinstance(a, str) and a for a in attrs):
        raise ProfileError(f"{src}: '{where}.attr' must be an attribute name or a list of them")
    if selector is None and not attrs:
        raise ProfileError(f"{src}: '{where}' needs a selector or an attr")
    return FieldSpec(selector, tuple(attrs))


def _fields(table: dict[str, Any], where: str, src: str) -> tuple[dict, dict]:
    fields = {n: _field(table[n], n, f"{where}.{n}", src) for n in FIELD_NAMES if n in table}
    attrs_table = _table(table.get("attributes", {}), f"{where}.attributes", src)
    attributes = {}
    for key, value in attrs_table.items():
        if key in RESERVED_COLUMNS or not _ATTR_NAME.fullmatch(key):
            raise ProfileError(f"{src}: '{where}.attributes.{key}' is not a usable attribute "
                               "name (letters, digits, _ and -; not a core catalog column)")
        attributes[key] = _field(value, key, f"{where}.attributes.{key}", src)
    return fields, attributes


def _http_url(url: Any, where: str, src: str) -> str:
    if not isinstance(url, str):
        raise ProfileError(f"{src}: '{where}' must be a string URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProfileError(f"{src}: '{where}' must be an absolute http(s) URL, got {url!r}")
    return url


def parse_profile(data: dict[str, Any], src: str = "profile",
                  base_url: str | None = None) -> Profile:
    """Validate a profile's TOML table and return a :class:`Profile`.

    ``base_url`` (from ``--base-url``) overrides the profile's own and replaces ``{base}``.
    """
    _check_keys(data, _TOP_KEYS, "", src)
    base = base_url or data.get("base_url")
    if base is not None:
        base = _http_url(base, "base_url", src).rstrip("/")

    def expand(url: Any, where: str) -> str:
        if isinstance(url, str) and "{base}" in url:
            if base is None:
                raise ProfileError(f"{src}: '{where}' uses {{base}} but no base_url is set "
                                   "(add base_url to the profile or pass --base-url)")
            url = url.replace("{base}", base)
        return url

    raw_starts = data.get("start_urls", [])
    if isinstance(raw_starts, str):
        raw_starts = [raw_starts]
    if not isinstance(raw_starts, list):
        raise ProfileError(f"{src}: 'start_urls' must be a list of URLs")
    starts = tuple(_http_url(expand(u, "start_urls"), "start_urls", src) for u in raw_starts)

    pag = _table(data.get("pagination", {}), "pagination", src)
    _check_keys(pag, _PAGINATION_KEYS, "pagination", src)
    next_sel = _selector(pag["next"], "pagination.next", src) if "next" in pag else None
    template = pag.get("url_template")
    page_range = None
    if template is not None:
        template = expand(template, "pagination.url_template")
        if "{page}" not in str(template):
            raise ProfileError(f"{src}: 'pagination.url_template' must contain {{page}}")
        _http_url(template.replace("{page}", "1"), "pagination.url_template", src)
        pages = pag.get("pages")
        if (not isinstance(pages, list) or len(pages) != 2
                or not all(isinstance(p, int) for p in pages) or pages[0] > pages[1]):
            raise ProfileError(f"{src}: 'pagination.pages' must be [first, last] page numbers "
                               "when url_template is set")
        page_range = (pages[0], pages[1])
    elif "pages" in pag:
        raise ProfileError(f"{src}: 'pagination.pages' needs 'pagination.url_template'")
    if not starts and template is None:
        raise ProfileError(f"{src}: set 'start_urls' or 'pagination.url_template'")

    listing = _table(data.get("listing", {}), "listing", src)
    _check_keys(listing, _LISTING_KEYS, "listing", src)
    card = _selector(listing["card"], "listing.card", src) if "card" in listing else None
    l_fields, l_attrs = _fields(listing, "listing", src)

    product = _table(data.get("product_page", {}), "product_page", src)
    _check_keys(product, _PRODUCT_KEYS, "product_page", src)
    fetch = product.get("fetch", bool(product))
    if not isinstance(fetch, bool):
        raise ProfileError(f"{src}: 'product_page.fetch' must be true or false")
    p_fields, p_attrs = _fields(product, "product_page", src)

    pol_table = _table(data.get("politeness", {}), "politeness", src)
    _check_keys(pol_table, _POLITENESS_KEYS, "politeness", src)
    politeness = Politeness()
    for key, value in pol_table.items():
        default = getattr(politeness, key)
        if isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        if not ok:
            raise ProfileError(f"{src}: 'politeness.{key}' has a bad value {value!r}")
        politeness = replace(politeness, **{key: type(default)(value)})

    max_pages = pag.get("max_pages")
    if max_pages is not None:
        if not isinstance(max_pages, int) or max_pages < 1:
            raise ProfileError(f"{src}: 'pagination.max_pages' must be a positive integer")
        politeness = replace(politeness, max_pages=max_pages)

    name = data.get("name", Path(src).stem)
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{src}: 'name' must be a non-empty string")
    return Profile(
        name=name, start_urls=starts, base_url=base, next_selector=next_sel,
        url_template=template, page_range=page_range, card=card,
        listing_fields=l_fields, listing_attributes=l_attrs, fetch_product_page=fetch,
        product_fields=p_fields, product_attributes=p_attrs, politeness=politeness,
    )


def bundled_profile(name: str) -> Path | None:
    """Path of a profile shipped in ``scraper/profiles`` (``demo`` -> ``demo.toml``)."""
    path = Path(__file__).parent / "profiles" / f"{name}.toml"
    return path if path.is_file() else None


def load_profile(path: str | Path, base_url: str | None = None) -> Profile:
    """Read and validate a profile file (or the name of a bundled profile, e.g. ``demo``)."""
    p = Path(path)
    if not p.is_file():
        bundled = bundled_profile(str(path))
        if bundled is None:
            raise ProfileError(f"profile not found: {path} (give a .toml path or a bundled "
                               "name such as 'demo')")
        p = bundled
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{p}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{p}: cannot read: {exc}") from None
    return parse_profile(data, str(p), base_url=base_url)
