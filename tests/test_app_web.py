"""Web behaviour against the real production server (gunicorn with the Procfile's config,
127.0.0.1, an ephemeral port): statuses, documents, compression, caching, limits."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest

from tests.dash_http import CALLBACK_URL, catalog_payload
from tests.fake_precomputed import HTML_TITLE
from tests.gunicorn_server import gunicorn

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.fixture(scope="module")
def server(fake_folder: Path) -> Iterator[str]:
    """gunicorn -c python:shopfront.gunicorn_conf app:server, 2 workers, the site's host
    name shop.test; yields host:port."""
    with gunicorn(fake_folder, "--access-logfile", "/dev/null",
                  env={"LOOKALIKE_HOSTS": "shop.test"}) as port:
        address = f"127.0.0.1:{port}"
        for _ in range(100):
            try:
                get(address, "/about")
                break
            except OSError:
                time.sleep(0.1)
        yield address


def get(address: str, path: str, headers: dict[str, str] | None = None,
        method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request; returns (status, headers with lowercase names, body)."""
    conn = http.client.HTTPConnection(address, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                response.read())
    finally:
        conn.close()


def test_statuses(server: str) -> None:
    assert get(server, "/")[0] == 200
    assert get(server, "/product/p001")[0] == 200
    assert get(server, "/product/no-such-product")[0] == 404
    assert get(server, "/no/such/page")[0] == 404
    assert get(server, "/thumbs/no-such.jpg")[0] == 404
    _, _, body = get(server, "/no/such/page")
    assert b"Nothing looks like this" in body  # the friendly page, server-rendered
    assert get(server, "/" + "x" * 10_000)[0] in (400, 414)  # refused by gunicorn


def test_documents_have_their_own_head(server: str, fake_folder: Path) -> None:
    product = json.loads((fake_folder / "products.json").read_text())[3]
    _, _, body = get(server, f"/product/{product['id']}")
    page = body.decode()
    assert re.search(r'<html lang="en">', page)
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)  # type: ignore[union-attr]
    assert title == f"{product['title']} · lookalike"
    assert f'<meta property="og:title" content="{product["title"]}">' in page
    image = re.search(r'<meta property="og:image" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    # the request named 127.0.0.1:port, which is not the site's host name
    assert image == f"http://shop.test/thumbs/{product['id']}.jpg"
    assert re.search(r'<meta name="description" content="[^"]{20,}"', page)
    assert f"<h1 class=\"h3\" id=\"product-title\">{product['title']}</h1>" in page
    titles = {path: re.search(r"<title>(.*?)</title>", get(server, path)[2].decode()).group(1)  # type: ignore[union-attr]
              for path in ("/", "/explore", "/about", "/nope", "/?q=red")}
    assert len(set(titles.values())) == len(titles), titles
    assert titles["/nope"].startswith("Page not found")
    assert '<meta name="robots" content="noindex">' in get(server, "/nope")[2].decode()
    escaped = get(server, "/product/p000")[2].decode()
    assert HTML_TITLE not in escaped and "&lt;script&gt;" in escaped


def test_first_frame_is_the_shop_not_loading(server: str) -> None:
    page = get(server, "/")[2].decode()
    entry = page[page.index('id="react-entry-point"'):]
    assert "Loading..." not in entry
    assert "navbar" in entry and "Shop the catalog" in entry
    assert entry.count('class="card product-card') == 24  # the first page of products


def test_compression_and_cache_lifetimes(server: str) -> None:
    status, headers, body = get(server, "/", {"Accept-Encoding": "br"})
    assert status == 200 and headers["content-encoding"] == "br"
    assert b"react-entry-point" in brotli.decompress(body)
    status, headers, body = get(server, "/", {"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and b"<title>" in gzip.decompress(body)
    page = get(server, "/")[2].decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert not any("polyfill" in src for src in scripts)  # ES5 shims no browser needs
    dash_js = next(s for s in scripts if "_dash-component-suites" in s and "dash_renderer" in s)
    status, headers, body = get(server, dash_js, {"Accept-Encoding": "br, gzip"})
    assert status == 200 and headers["content-encoding"] in ("br", "gzip")
    assert "max-age=31536000" in headers["cache-control"]
    again = get(server, dash_js, {"Accept-Encoding": "br"})
    assert again[2] == body or headers["content-encoding"] != "br"  # compressed once, reused
    css = re.search(r'<link rel="stylesheet" href="(/assets/bootstrap\.min\.css\?m=[^"]+)"', page)
    assert css, "versioned asset URL"
    status, headers, body = get(server, css.group(1), {"Accept-Encoding": "br"})
    assert status == 200 and "max-age=31536000" in headers["cache-control"]
    assert "no-cache" not in headers["cache-control"]
    assert len(body) < 60_000  # 230 KB of CSS, compressed
    _, headers, _ = get(server, "/thumbs/p001.jpg")
    assert "max-age=604800" in headers["cache-control"]


def test_security_headers_and_server_name(server: str) -> None:
    _, headers, _ = get(server, "/product/p001")
    assert headers["server"] == "lookalike"
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def raw_post(address: str, path: str, body: bytes, chunked: bool = False) -> int:
    """POST over a plain socket, reading the answer even if the server stops reading the
    body early (as it should past the limit); the status, or 0 if there was none."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
        head += ("Transfer-Encoding: chunked\r\n" if chunked
                 else f"Content-Length: {len(body)}\r\n")
        try:
            sock.sendall((head + "Connection: close\r\n\r\n").encode())
            step = 65536
            for i in range(0, len(body), step):
                piece = body[i:i + step]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed its side: read what it answered
        try:
            answer = sock.recv(4096)
        except OSError:
            return 0
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(match.group(1)) if match else 0


def test_body_limit_over_http(server: str) -> None:
    assert raw_post(server, CALLBACK_URL, b"x" * (4 * 2**20)) == 413
    assert raw_post(server, CALLBACK_URL, b"x" * (8 * 2**20), chunked=True) in (0, 400, 413)
    assert get(server, "/")[0] == 200


def test_huge_searches_do_not_stall_other_shoppers(server: str, fake_folder: Path) -> None:
    facets = ["gender", "articleType", "baseColour"]
    hostile = json.dumps(catalog_payload(facets, q="a " * 2_000_000)).encode()
    results: list[Any] = []

    def attack() -> None:
        results.append(raw_post(server, CALLBACK_URL, hostile))

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for t in threads:
        t.start()
    normal = json.dumps(catalog_payload(facets, q="red")).encode()
    statuses = [get(server, CALLBACK_URL, {"Content-Type": "application/json"}, "POST",
                    normal)[0] for _ in range(20)]
    for t in threads:
        t.join(timeout=60)
    assert results == [413] * 4
    assert statuses == [200] * 20
