"""The demo shop web server (stdlib ``ThreadingHTTPServer``, loopback only).

Pages: ``/`` (home), ``/shop/page/<n>.html`` (24 products per page, "next" links),
``/product/<slug>.html`` (JSON-LD, OpenGraph, attribute list), ``/img/<sku>-<256|512>.jpg``
(drawn on first request, then cached), ``/robots.txt`` (disallows ``/members/``). Cards
vary on purpose: plain ``src``, lazy ``data-src`` with a placeholder, ``srcset``,
relative and protocol-relative URLs.

The JavaScript section ``/js/shop.html`` has an empty grid that its script fills from
``/api/products.json?page=N`` (``per_page``, ``category`` from the page's own query),
one batch more whenever the visitor scrolls to the bottom (infinite scroll).
``/products.json?page=N&limit=M`` is a Shopify-style JSON feed of the same products
(``id``, ``title``, ``handle``, ``product_type``, ``variants[].price``/``sku``,
``images[].src``). ``image_base`` makes every page point at images on another server
(a CDN); ``latency`` delays every response (a slower host).

With ``faults=True`` it also serves ``/faults/...``: a listing whose products exercise
every failure the crawler must survive (see :data:`FAULT_CARDS`). Every request is
logged with its arrival time in ``server.request_log`` for politeness checks.
"""

from __future__ import annotations

import html
import io
import json
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from scraper import ScraperError
from scraper.demo_shop.draw import photo_jpegs
from scraper.demo_shop.products import CATEGORIES, DemoProduct, demo_products

PER_PAGE = 24
SIZES = (256, 512)
ROBOTS = "User-agent: *\nDisallow: /members/\n"
PLACEHOLDER_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01"
                   b"\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it."""

    at: float  # time.monotonic() on arrival
    path: str
    user_agent: str
    status: int


def _page(title: str, body: str, head: str = "") -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)} - Lookalike demo shop</title>{head}"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
            ".grid{display:flex;flex-wrap:wrap;list-style:none;padding:0;gap:12px}"
            ".product-card{width:200px}.product-card img{width:200px;height:200px}"
            "</style></head>"
            f'<body><header><a href="/">Lookalike demo shop</a></header>{body}</body></html>')


def _card(p: DemoProduct, n: int, page: int, image_base: str | None = None) -> str:
    """A listing card; ``n`` picks how its image and link are written."""
    img = f"/img/{p.image_sku}"
    alt = html.escape(p.title)
    variant = n % 4
    if image_base:  # images on another host: absolute URLs only
        tag = f'<img class="photo" src="{image_base}{img}-256.jpg" alt="{alt}">'
    elif variant == 0:
        tag = f'<img class="photo" src="{img}-256.jpg" alt="{alt}">'
    elif variant == 1:  # lazy-loaded, relative to /shop/page/N.html
        tag = (f'<img class="photo lazy" src="/static/placeholder.gif" '
               f'data-src="../..{img}-512.jpg" alt="{alt}">')
    elif variant == 2:  # srcset, the largest candidate protocol-relative
        tag = (f'<img class="photo" src="{img}-256.jpg" srcset="{img}-256.jpg 256w, '
               f'//{{host}}{img}-512.jpg 512w" sizes="200px" alt="{alt}">')
    else:  # protocol-relative src
        tag = f'<img class="photo" src="//{{host}}{img}-256.jpg" alt="{alt}">'
    link = p.page_path if n % 3 else f"../..{p.page_path}"
    return (f'<li class="product-card" data-sku="{p.sku}" data-category="{p.category}">'
            f'<a class="product-link" href="{link}">{tag}</a>'
            f'<h2 class="title"><a href="{link}">{html.escape(p.title)}</a></h2>'
            f'<p class="price">€{p.price}</p></li>')


CATEGORY_CODES = {c[0]: n for n, c in enumerate(CATEGORIES)}

# The JavaScript section: an empty grid filled by fetch(), a batch more at the bottom.
JS_SHOP_BODY = """<h1>All products (rendered in your browser)</h1>
<ul class="grid" id="grid"></ul><p id="status">Loading...</p>
<script>
const own = new URLSearchParams(location.search);
let page = 1, loading = false, done = false;
function card(p) {
  const li = document.createElement("li");
  li.className = "product-card"; li.dataset.sku = p.sku; li.dataset.category = p.category;
  const a = document.createElement("a"); a.className = "product-link"; a.href = p.url;
  const img = document.createElement("img"); img.className = "photo"; img.alt = p.title;
  img.setAttribute("data-src", p.image); a.appendChild(img);
  const h = document.createElement("h2"); h.className = "title"; h.textContent = p.title;
  const price = document.createElement("p"); price.className = "price";
  price.textContent = "\u20ac" + p.price;
  li.append(a, h, price); return li;
}
async function more() {
  if (loading || done) return;
  loading = true;
  const q = new URLSearchParams(own); q.set("page", page);
  const data = await (await fetch("/api/products.json?" + q)).json();
  if (data.products.length === 0) { done = true; }
  else { data.products.forEach(p => grid.appendChild(card(p))); page += 1; }
  statusEl.textContent = done ? "That's everything." : "Scroll for more";
  loading = false;
}
const grid = document.getElementById("grid"), statusEl = document.getElementById("status");
window.addEventListener("scroll", () => {
  if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 300)
    more();
});
more();
</script>"""


# --- faults --------------------------------------------------------------------------

# (sku, title, image markup); {host} is replaced by the server's host:port.
FAULT_CARDS = (
    ("F-OK-REL", "relative src", '<img src="img/ok-a.png">'),
    ("F-OK-SRCSET", "srcset", '<img src="img/ok-b-small.png" '
     'srcset="img/ok-b-small.png 100w, img/ok-b.png 400w">'),
    ("F-OK-PROTO", "protocol-relative", '<img src="//{host}/faults/img/ok-c.png">'),
    ("F-OK-LAZY", "lazy data-src", '<img src="/static/placeholder.gif" data-src="img/ok-d.png">'),
    ("F-DUP-1", "duplicate photo 1", '<img src="img/dup-1.png">'),
    ("F-DUP-2", "duplicate photo 2", '<img src="img/dup-2.png">'),
    ("F-REDIRECT", "redirected image", '<img src="img/moved.png">'),
    ("F-404", "missing image", '<img src="img/missing.png">'),
    ("F-FLAKY", "500 then 200", '<img src="img/flaky.png">'),
    ("F-429", "429 then 200", '<img src="img/throttled.png">'),
    ("F-SLOW", "slower than the timeout", '<img src="img/slow.png">'),
    ("F-HTML", "HTML instead of an image", '<img src="img/html.png">'),
    ("F-CORRUPT", "corrupt bytes", '<img src="img/corrupt.jpg">'),
    ("F-TRUNCATED", "truncated JPEG", '<img src="img/truncated.jpg">'),
    ("F-HUGE", "huge Content-Length", '<img src="img/huge.jpg">'),
    ("F-HUGE-STREAM", "huge without Content-Length", '<img src="img/huge-stream.jpg">'),
    ("F-BOMB", "decompression bomb", '<img src="img/bomb.png">'),
    ("F-LOOP", "redirect loop", '<img src="img/loop-a.png">'),
    ("F-ROBOTS", "robots-disallowed image", '<img src="/members/secret.png">'),
    ("F-UNREACHABLE", "unreachable host", '<img src="http://127.0.0.1:9/x.png">'),
)
FAULT_GOOD = {"F-OK-REL", "F-OK-SRCSET", "F-OK-PROTO", "F-OK-LAZY", "F-DUP-1", "F-DUP-2",
              "F-REDIRECT", "F-FLAKY", "F-429"}


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims 1.6 gigapixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


class DemoShopServer(ThreadingHTTPServer):
    """The shop: products, cached photos, fault state and the request log."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, faults: bool = False, slow_seconds: float = 3.0,
                 crawl_delay: int | None = None, quiet: bool = True,
                 image_base: str | None = None, latency: float = 0.0) -> None:
        self.products = demo_products()
        self.by_sku = {p.sku: p for p in self.products}
        self.by_path = {p.page_path: p for p in self.products}
        self.faults = faults
        self.slow_seconds = slow_seconds
        self.quiet = quiet
        self.image_base = image_base.rstrip("/") if image_base else None
        self.latency = latency
        self.robots = ROBOTS + (f"Crawl-delay: {crawl_delay}\n" if crawl_delay else "")
        self.request_log: list[LoggedRequest] = []
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._photos: dict[tuple[str, int], bytes] = {}
        self._photo_locks: dict[str, threading.Lock] = {}
        try:
            super().__init__(("127.0.0.1", port), DemoShopHandler)
        except OSError as exc:
            raise ScraperError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def n_pages(self) -> int:
        """Number of listing pages."""
        return -(-len(self.products) // PER_PAGE)

    def hit(self, path: str) -> int:
        """Count a request to ``path`` and return how many there have been (for faults)."""
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            return self.hits[path]

    def reset(self) -> None:
        """Forget fault counters and the request log."""
        with self._lock:
            self.hits.clear()
            self.request_log.clear()

    def photo(self, sku: str, size: int) -> bytes:
        """The JPEG of a product photo; all sizes are drawn together on first request."""
        with self._lock:
            lock = self._photo_locks.setdefault(sku, threading.Lock())
        with lock:
            if (sku, size) not in self._photos:
                for k, data in photo_jpegs(self.by_sku[sku], SIZES).items():
                    self._photos[(sku, k)] = data
            return self._photos[(sku, size)]


class DemoShopHandler(BaseHTTPRequestHandler):
    """Routes requests; see the module docstring."""

    server: DemoShopServer
    protocol_version = "HTTP/1.1"  # keep-alive, as real shops do
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms ACK stall
    server_version = "LookalikeDemoShop/1.0"

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            sys.stderr.write("demo-shop: " + format % args + "\n")

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.server.request_log.append(LoggedRequest(
            self._arrived, self.path, self.headers.get("User-Agent", ""), status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, text: str, status: int = 200) -> None:
        host = self.headers.get("Host") or self.server.base_url.split("//")[1]
        self._send(status, text.replace("{host}", host).encode("utf-8"))

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._arrived = time.monotonic()
        if self.server.latency:
            time.sleep(self.server.latency)
        path = urlsplit(self.path).path
        try:
            if path.startswith("/faults/") and self.server.faults:
                self._fault(path)
            else:
                self._shop(path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # shop pages ------------------------------------------------------------------------
    def _shop(self, path: str) -> None:
        srv = self.server
        if path == "/robots.txt":
            self._send(200, srv.robots.encode(), "text/plain; charset=utf-8")
        elif path in ("/", "/index.html"):
            cats = "".join(f"<li>{c[0]}</li>" for c in CATEGORIES)
            self._html(_page("Home", f"<h1>Lookalike demo shop</h1><p>{len(srv.products)} "
                             f"products in {len(CATEGORIES)} categories:</p><ul>{cats}</ul>"
                             '<p><a class="shop-link" href="/shop/page/1.html">Shop all</a></p>'))
        elif path.startswith("/shop/page/") and path.endswith(".html"):
            self._listing(path)
        elif path == "/js/shop.html":
            self._html(_page("Shop (JavaScript)", JS_SHOP_BODY))
        elif path == "/api/products.json":
            self._api_products()
        elif path == "/products.json":
            self._shopify_feed()
        elif path in srv.by_path:
            self._product(srv.by_path[path])
        elif path.startswith("/img/") and path.endswith(".jpg"):
            stem = path[len("/img/"):-len(".jpg")]
            sku, _, size = stem.rpartition("-")
            if sku in srv.by_sku and size.isdigit() and int(size) in SIZES:
                self._send(200, srv.photo(sku, int(size)), "image/jpeg",
                           {"Cache-Control": "max-age=86400"})
            else:
                self._html(_page("Not found", "<h1>No such image</h1>"), 404)
        elif path == "/static/placeholder.gif":
            self._send(200, PLACEHOLDER_GIF, "image/gif")
        else:
            self._html(_page("Not found", "<h1>Page not found</h1>"), 404)

    def _listing(self, path: str) -> None:
        srv = self.server
        number = path[len("/shop/page/"):-len(".html")]
        if not number.isdigit() or not 1 <= int(number) <= srv.n_pages:
            self._html(_page("Not found", "<h1>No such page</h1>"), 404)
            return
        n = int(number)
        items = srv.products[(n - 1) * PER_PAGE:n * PER_PAGE]
        cards = "".join(_card(p, (n - 1) * PER_PAGE + i, n, srv.image_base)
                        for i, p in enumerate(items))
        nav = []
        if n > 1:
            nav.append(f'<a class="prev" rel="prev" href="{n - 1}.html">Previous</a>')
        nav.append(f"<span>Page {n} of {srv.n_pages}</span>")
        if n < srv.n_pages:
            nav.append(f'<a class="next" rel="next" href="{n + 1}.html">Next</a>')
        self._html(_page(f"Shop, page {n}", f'<h1>All products</h1><ul class="grid">{cards}'
                         f'</ul><nav class="pagination">{" ".join(nav)}</nav>'))

    def _query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _json(self, data: object, headers: dict[str, str] | None = None) -> None:
        self._send(200, json.dumps(data).encode(), "application/json", headers)

    def _batch(self, page_key: str, size_key: str, default_size: int) -> list[DemoProduct]:
        """One page of the products, filtered by ``category`` when the query names one."""
        query = self._query()
        page = int(query[page_key]) if query.get(page_key, "").isdigit() else 1
        size = int(query[size_key]) if query.get(size_key, "").isdigit() else default_size
        size = max(1, min(size, 250))
        items = [p for p in self.server.products
                 if not query.get("category") or p.category == query["category"]]
        return items[(page - 1) * size:page * size] if page >= 1 else []

    def _api_products(self) -> None:
        base = self.server.image_base or ""
        self._json({"products": [
            {"sku": p.sku, "title": p.title, "url": p.page_path, "category": p.category,
             "image": f"{base}/img/{p.image_sku}-512.jpg", "price": p.price}
            for p in self._batch("page", "per_page", 12)]})

    def _shopify_feed(self) -> None:
        base = self.server.image_base or self.server.base_url
        products = []
        for p in self._batch("page", "limit", 30):
            on_sale = p.sku.endswith("5")  # every tenth product: compare_at above the price
            compare = f"{float(p.price) * 1.25:.2f}" if on_sale else None
            products.append({
                "id": 7_000_000 + int(p.sku.rsplit("-", 1)[1]) * 100 + CATEGORY_CODES[p.category],
                "title": p.title, "handle": p.slug, "vendor": "Lookalike",
                "product_type": p.category, "tags": [p.colour, p.pattern],
                "variants": [{"id": 1, "sku": p.sku, "price": p.price,
                              "compare_at_price": compare, "available": True}],
                "images": [{"src": f"{base}/img/{p.image_sku}-512.jpg", "position": 1}]})
        self._json({"products": products})

    def _product(self, p: DemoProduct) -> None:
        image = f"{self.server.image_base or self.server.base_url}/img/{p.image_sku}-512.jpg"
        data = {"@context": "https://schema.org", "@type": "Product", "name": p.title,
                "sku": p.sku, "image": [image], "category": p.category, "color": p.colour,
                "offers": {"@type": "Offer", "price": p.price, "priceCurrency": "EUR",
                           "availability": "https://schema.org/InStock"}}
        head = (f'<script type="application/ld+json">{json.dumps(data)}</script>'
                f'<meta property="og:type" content="product">'
                f'<meta property="og:title" content="{html.escape(p.title)}">'
                f'<meta property="og:image" content="{image}">'
                f'<meta property="product:price:amount" content="{p.price}">'
                f'<meta property="product:price:currency" content="EUR">')
        body = (f'<main class="product"><h1 class="product-title">{html.escape(p.title)}</h1>'
                f'<img class="main-photo" src="{image}" width="512" '
                f'alt="{html.escape(p.title)}"><p class="price">€{p.price}</p>'
                f'<dl class="attributes"><dt>Category</dt><dd class="category">{p.category}</dd>'
                f'<dt>Colour</dt><dd class="colour">{p.colour}</dd>'
                f'<dt>Pattern</dt><dd class="pattern">{p.pattern}</dd>'
                f'<dt>Style</dt><dd class="style">{p.variant}</dd></dl></main>')
        self._html(_page(p.title, body, head))

    # faults ----------------------------------------------------------------------------
    def _fault(self, path: str) -> None:
        name = path[len("/faults/"):]
        count = self.server.hit(path)
        if name == "shop.html":
            cards = "".join(
                f'<li class="product-card" data-sku="{sku}"><a class="product-link" '
                f'href="p/{sku.lower()}.html">{img}</a><h2 class="title">{title}</h2>'
                f'<p class="price">$1,234.50</p></li>' for sku, title, img in FAULT_CARDS)
            self._html(_page("Faults", f'<ul class="grid">{cards}</ul>'
                             '<a class="next" href="empty.html">Next</a>'))
        elif name == "empty.html":
            self._html(_page("Empty", "<p>No products here.</p>"))
        elif name == "flaky-page.html":
            if count == 1:
                self._html(_page("Error", "<h1>Server error</h1>"), 500)
            else:
                self._html(_page("Flaky", '<ul><li class="product-card" data-sku="F-PAGE">'
                                 '<img src="img/ok-e.png"></li></ul>'))
        elif name.startswith("img/"):
            self._fault_image(name[len("img/"):], count)
        else:
            self._html(_page("Not found", "<h1>Not found</h1>"), 404)

    def _fault_image(self, name: str, count: int) -> None:
        colours = {"ok-a.png": (200, 30, 30), "ok-b.png": (30, 200, 30),
                   "ok-b-small.png": (30, 90, 30), "ok-c.png": (30, 30, 200),
                   "ok-d.png": (200, 200, 30), "ok-e.png": (30, 200, 200),
                   "dup-1.png": (120, 60, 200), "dup-2.png": (120, 60, 200),
                   "flaky.png": (250, 120, 0), "throttled.png": (0, 120, 250)}
        if name in colours and name not in ("flaky.png", "throttled.png"):
            self._send(200, _png(colours[name]), "image/png")
        elif name == "flaky.png":
            if count == 1:
                self._send(500, b"oops", "text/plain")
            else:
                self._send(200, _png(colours[name]), "image/png")
        elif name == "throttled.png":
            if count == 1:
                self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
            else:
                self._send(200, _png(colours[name]), "image/png")
        elif name == "moved.png":
            self._send(302, b"", "text/plain", {"Location": "/faults/img/ok-e.png"})
        elif name == "loop-a.png":
            self._send(302, b"", "text/plain", {"Location": "loop-b.png"})
        elif name == "loop-b.png":
            self._send(302, b"", "text/plain", {"Location": "loop-a.png"})
        elif name == "slow.png":
            time.sleep(self.server.slow_seconds)
            self._send(200, _png((9, 9, 9)), "image/png")
        elif name == "html.png":
            self._html(_page("Hello", "<p>I am a web page, not a photo.</p>"))
        elif name == "corrupt.jpg":
            self._send(200, b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "image/jpeg")
        elif name == "truncated.jpg":
            buf = io.BytesIO()
            Image.effect_noise((256, 256), 60).convert("RGB").save(buf, "JPEG")
            self._send(200, buf.getvalue()[: len(buf.getvalue()) // 2], "image/jpeg")
        elif name == "huge.jpg":
            self._stream(200_000_000, with_length=True)
        elif name == "huge-stream.jpg":
            self._stream(200_000_000, with_length=False)
        elif name == "bomb.png":
            self._send(200, _bomb_png(), "image/png")
        else:
            self._html(_page("Not found", "<h1>Not found</h1>"), 404)

    def _stream(self, total: int, with_length: bool) -> None:
        """Send up to ``total`` bytes of JPEG-looking data until the client hangs up."""
        self.server.request_log.append(LoggedRequest(
            self._arrived, self.path, self.headers.get("User-Agent", ""), 200))
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if with_length:
            self.send_header("Content-Length", str(total))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        chunk = b"\xff\xd8\xff\xe0" + b"\x00" * 65532
        sent = 0
        while sent < total:
            self.wfile.write(chunk)
            sent += len(chunk)


def start_server(port: int = 0, faults: bool = False, **kwargs) -> DemoShopServer:
    """Start the shop in a background thread; stop it with ``server.shutdown()``."""
    server = DemoShopServer(port=port, faults=faults, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              name="demo-shop")
    thread.start()
    return server


def serve_forever(port: int = 8765, faults: bool = False) -> None:
    """Serve until Ctrl-C, printing the URL (``python -m scraper demo-shop``)."""
    server = DemoShopServer(port=port, faults=faults, quiet=False)
    print(f"demo shop: {server.base_url}/  ({len(server.products)} products, "
          f"{server.n_pages} listing pages; Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
