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
FIELD_NAMES = ("id", "title", "price", "sale_price", "currency", "link", "image")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    max_download_seconds: float = 120.0  # deadline of every request, headers and body
    max_host_pause: float = 900.0  # a longer Retry-After drops the host for the run
    autothrottle: bool = False  # adapt each host's delay to its response times
    max_delay: float = 60.0  # ceiling of the adaptive delay
    workers: int = 4  # threads; each host still gets one request at a time

    def user_agent_header(self) -> str:
        """The User-Agent sent with every request, with the contact when one is set."""
        if self.contact:
            return f"{self.user_agent} contact: {self.contact}"
        return self.user_agent


@dataclass(frozen=True)
class FeedSpec:
    """A JSON product feed: the URL (``{page}`` is numbered from ``first_page`` until a
    page has no items), JMESPath expressions for the item list, each field and the next
    URL, and an optional format per field (``{}`` = the value)."""

    url: str
    items: str
    first_page: int = 1
    fields: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    next: str | None = None


@dataclass(frozen=True)
class BrowserSpec:
    """Which pages headless Chromium renders, and how it waits, scrolls and clicks."""

    listing: bool = True
    product_page: bool = False
    wait_for: str | None = None  # default: the listing's card selector
    scroll: bool = False  # infinite scroll: scroll until no new cards appear
    load_more: str | None = None  # a "load more" button to click until it is gone
    max_scrolls: int = 30
    wait: float = 10.0  # seconds to wait for cards (and for new cards after a scroll)
    chromium: str | None = None
    chromedriver: str | None = None


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
    allowed_hosts: tuple[str, ...] = ()
    currency: str | None = None
    feed: FeedSpec | None = None
    browser: BrowserSpec | None = None

    def listing_urls(self) -> list[str]:
        """The first listing URLs to fetch: start URLs, then the URL template's pages."""
        urls = list(self.start_urls)
        if self.url_template and self.page_range:
            first, last = self.page_range
            urls += [self.url_template.replace("{page}", str(n)) for n in range(first, last + 1)]
        if self.feed is not None:
            urls.append(self.feed.url.replace("{page}", str(self.feed.first_page)))
        return urls


def host_key(url_or_host: str) -> tuple[str, int | None]:
    """(lower-case host name, port or None for the scheme's default) of a URL or of a
    ``host[:port]`` entry."""
    text = url_or_host if "//" in url_or_host else "//" + url_or_host
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and _DEFAULT_PORTS.get(parts.scheme) == port:
        port = None
    return (parts.hostname or "").lower(), port


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``url``'s host is one of ``allowed`` (``host``, ``host:port`` or
    ``*.domain``); an entry without a port means the default ports (http and https)."""
    host, port = host_key(url)
    if not host:
        return False
    for entry in allowed:
        name, entry_port = host_key(entry)
        if entry_port != port:
            continue
        if name == host or (name.startswith("*.") and (host == name[2:]
                                                       or host.endswith(name[1:]))):
            return True
    return False


def default_hosts(urls: list[str]) -> list[str]:
    """``host[:port]`` of each URL, plus its ``www.`` twin (shops redirect between them)."""
    hosts = []
    for url in urls:
        name, port = host_key(url)
        twin = name[4:] if name.startswith("www.") else f"www.{name}"
        for n in (name, twin):
            hosts.append(n if port is None else f"{n}:{port}")
    return list(dict.fromkeys(h for h in hosts if h and not h.startswith("www.:")))


_TOP_KEYS = {"name", "base_url", "start_urls", "pagination", "listing", "product_page",
             "politeness", "allowed_hosts", "image_hosts", "currency", "feed", "browser"}
_FEED_KEYS = {"url", "items", "first_page", "next", *FIELD_NAMES, "attributes"}
_FEED_FIELD_KEYS = {"path", "format"}
_BROWSER_KEYS = set(BrowserSpec.__dataclass_fields__)
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
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        elif key == "workers":
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 32
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

    feed = _feed(data["feed"], expand, src) if "feed" in data else None
    if not starts and template is None and feed is None:
        raise ProfileError(f"{src}: set 'start_urls', 'pagination.url_template' or 'feed.url'")
    browser = _browser(data["browser"], card, src) if "browser" in data else None
    if browser is not None and browser.listing and feed is not None:
        raise ProfileError(f"{src}: 'browser.listing' and 'feed' exclude each other (a feed "
                           "is JSON, read without a browser); set browser.listing = false")

    site_urls = [*starts, *([template] if template else []), *([feed.url] if feed else []),
                 *([base] if base else [])]
    image_hosts = _host_list(data.get("image_hosts", []), "image_hosts", src)
    extra_hosts = _host_list(data.get("allowed_hosts", []), "allowed_hosts", src)
    allowed = tuple(dict.fromkeys([*default_hosts(site_urls), *image_hosts, *extra_hosts]))

    currency = data.get("currency")
    if currency is not None and (not isinstance(currency, str)
                                 or not re.fullmatch(r"[A-Z]{3}", currency)):
        raise ProfileError(f"{src}: 'currency' must be an ISO 4217 code such as 'EUR', "
                           f"got {currency!r}")

    name = data.get("name", Path(src).stem)
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{src}: 'name' must be a non-empty string")
    return Profile(
        name=name, start_urls=starts, base_url=base, next_selector=next_sel,
        url_template=template, page_range=page_range, card=card,
        listing_fields=l_fields, listing_attributes=l_attrs, fetch_product_page=fetch,
        product_fields=p_fields, product_attributes=p_attrs, politeness=politeness,
        allowed_hosts=allowed, currency=currency, feed=feed, browser=browser,
    )


def _host_list(value: Any, where: str, src: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ProfileError(f"{src}: '{where}' must be a list of host names")
    hosts = []
    for entry in value:
        if not isinstance(entry, str) or not host_key(entry.removeprefix("*."))[0] \
                or "/" in entry.split("//")[-1]:
            raise ProfileError(f"{src}: '{where}' entry {entry!r} is not a host name "
                               "(host, host:port or *.domain)")
        name, port = host_key(entry.split("//")[-1])
        hosts.append(name if port is None else f"{name}:{port}")
    return hosts


def _jmespath(value: Any, where: str, src: str) -> str:
    import jmespath
    from jmespath.exceptions import JMESPathError

    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{src}: '{where}' must be a non-empty JMESPath expression")
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        first = str(exc).splitlines()[0]
        raise ProfileError(f"{src}: '{where}' is not a valid JMESPath expression "
                           f"{value!r}: {first}") from None
    return value


def _feed(value: Any, expand: Any, src: str) -> FeedSpec:
    table = _table(value, "feed", src)
    _check_keys(table, _FEED_KEYS, "feed", src)
    if "url" not in table:
        raise ProfileError(f"{src}: 'feed.url' is required (e.g. \"{{base}}/products.json"
                           "?page={page}\")")
    url = expand(table["url"], "feed.url")
    _http_url(url.replace("{page}", "1"), "feed.url", src)
    first = table.get("first_page", 1)
    if not isinstance(first, int) or isinstance(first, bool) or first < 0:
        raise ProfileError(f"{src}: 'feed.first_page' must be a page number")
    fields: dict[str, str] = {}
    formats: dict[str, str] = {}
    for name in FIELD_NAMES:
        if name not in table:
            continue
        spec = table[name]
        if isinstance(spec, dict):
            _check_keys(spec, _FEED_FIELD_KEYS, f"feed.{name}", src)
            fmt = spec.get("format", "{}")
            if not isinstance(fmt, str) or "{}" not in fmt:
                raise ProfileError(f"{src}: 'feed.{name}.format' must contain {{}}")
            formats[name] = expand(fmt, f"feed.{name}.format")
            spec = spec.get("path")
        fields[name] = _jmespath(spec, f"feed.{name}", src)
    attrs_table = _table(table.get("attributes", {}), "feed.attributes", src)
    attributes = {}
    for key, expr in attrs_table.items():
        if key in RESERVED_COLUMNS or not _ATTR_NAME.fullmatch(key):
            raise ProfileError(f"{src}: 'feed.attributes.{key}' is not a usable attribute name")
        attributes[key] = _jmespath(expr, f"feed.attributes.{key}", src)
    nxt = _jmespath(table["next"], "feed.next", src) if "next" in table else None
    return FeedSpec(url=url, items=_jmespath(table.get("items", "@"), "feed.items", src),
                    first_page=first, fields=fields, formats=formats,
                    attributes=attributes, next=nxt)


def _browser(value: Any, card: str | None, src: str) -> BrowserSpec:
    table = _table(value, "browser", src)
    _check_keys(table, _BROWSER_KEYS, "browser", src)
    spec = BrowserSpec()
    for key, val in table.items():
        default = getattr(spec, key)
        if key in ("wait_for", "load_more"):
            val = _selector(val, f"browser.{key}", src)
        elif key in ("chromium", "chromedriver"):
            ok = isinstance(val, str) and val
            if not ok:
                raise ProfileError(f"{src}: 'browser.{key}' must be a path")
        elif isinstance(default, bool):
            if not isinstance(val, bool):
                raise ProfileError(f"{src}: 'browser.{key}' must be true or false")
        elif key == "max_scrolls":
            if not isinstance(val, int) or isinstance(val, bool) or not 0 <= val <= 1000:
                raise ProfileError(f"{src}: 'browser.max_scrolls' must be 0-1000")
        elif not isinstance(val, int | float) or isinstance(val, bool) or val <= 0:
            raise ProfileError(f"{src}: 'browser.{key}' must be a positive number")
        spec = replace(spec, **{key: float(val) if key == "wait" else val})
    if spec.wait_for is None:
        spec = replace(spec, wait_for=card)
    if spec.listing and spec.wait_for is None:
        raise ProfileError(f"{src}: 'browser' needs 'listing.card' or 'browser.wait_for' "
                           "(what to wait for on a rendered listing page)")
    return spec


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
