"""The shop front under hostile and odd requests: bounded cost, bounded memory, a default
view instead of an error, limits and headers, and one-line errors for a damaged folder."""

from __future__ import annotations

import html
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.precomputed import PrecomputedError
from shopfront import Shop, ShopFront, create_app
from shopfront.document import to_html
from shopfront.hosts import HostConfigError
from shopfront.pages.catalog import sync_catalog
from shopfront.pages.explore import cached_figure
from shopfront.query import (
    MAX_QUERY_CHARS,
    MAX_VALUES_PER_FILTER,
    make_query,
    parse_catalog_query,
)
from tests.dash_http import CALLBACK_URL, catalog_payload, explore_payload, render_payload
from tests.fake_precomputed import make_fake_precomputed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def front(fake_folder: Path) -> ShopFront:
    return create_app(fake_folder)


@pytest.fixture(scope="module")
def facets(front: ShopFront) -> list[str]:
    return [f.name for f in front.shop.facets]


def post(front: ShopFront, payload: dict[str, Any]) -> Any:
    return front.server.test_client().post(CALLBACK_URL, json=payload)


# --------------------------------------------------------------------------- bounded input


def test_huge_search_text_is_cut_before_any_work(front: ShopFront) -> None:
    shop = front.shop
    query = make_query(shop.filter_choices, "a " * 2_000_000, {}, "featured", 1)
    assert len(query.q) <= MAX_QUERY_CHARS and len(query.q.split()) <= 12
    out = sync_catalog(shop, "control", "", "a " * 2_000_000, "featured", {})
    assert out[3] == query.q  # the search box shows what was searched
    url = "?q=" + "x" * 5_000_000
    assert len(parse_catalog_query(url, shop.filter_choices).q) <= MAX_QUERY_CHARS


def test_filter_lists_are_bounded_and_deduplicated(front: ShopFront) -> None:
    shop = front.shop
    chosen = {"gender": ["Men"] * 100 + ["Women"] + [f"v{i}" for i in range(40_000)]}
    query = make_query(shop.filter_choices, "", chosen, "featured", 1)
    assert query.filters == (("gender", ("Men", "Women")),)
    late = {"gender": ["x"] * 40_000 + ["Women"]}  # only the first few hundred are read
    assert make_query(shop.filter_choices, "", late, "featured", 1).filters == ()
    many = {"baseColour": [f"v{i}" for i in range(10_000)]}
    assert make_query(shop.filter_choices, "", many, "featured", 1).filters == ()
    url = "?" + "&".join(f"gender=v{i}" for i in range(100_000))
    assert parse_catalog_query(url, shop.filter_choices).filters == ()
    assert MAX_VALUES_PER_FILTER <= 100


def test_a_4mb_search_over_http_is_refused_unread(front: ShopFront, facets: list[str]) -> None:
    response = post(front, catalog_payload(facets, q="a " * 2_000_000))
    assert response.status_code == 413
    fine = post(front, catalog_payload(facets, q="a " * 200))  # long but under the limit
    assert fine.status_code == 200
    assert fine.get_json()["response"]["catalog-search"]["value"] == " ".join(["a"] * 12)


def test_request_body_limit_in_static_mode(front: ShopFront) -> None:
    client = front.server.test_client()
    big = b"x" * (2 * 2**20)
    assert client.post(CALLBACK_URL, data=big, content_type="application/json").status_code == 413
    # (chunked bodies without a Content-Length: tests/test_app_web.py, against gunicorn)


@pytest.mark.parametrize("page", ["²", "9" * 5000, -1, 0, 1.5, True, None, [2], {"a": 1}, "2"])
def test_odd_page_numbers_give_a_page(front: ShopFront, facets: list[str], page: Any) -> None:
    search = page if not isinstance(page, str) else "?page=" + page
    payload = catalog_payload(facets, url_search=search, changed="catalog-url.search")
    response = post(front, payload)
    assert response.status_code == 200
    out = response.get_json()["response"]
    current = json.dumps(out["catalog-pagination"]["children"])
    assert f'"aria-current": "page", "children": "{2 if page == "2" else 1}"' in current \
        or f'"children": "{2 if page == "2" else 1}", "className": "page-link", "aria-current"' \
        in current
    assert "product-card" in json.dumps(out["catalog-grid"])


@pytest.mark.parametrize("value", [None, 5, ["a"], {"q": 1}, True, "x" * 10_000])
def test_non_string_inputs_give_the_default_view(
    front: ShopFront, facets: list[str], value: Any
) -> None:
    for payload in (
        catalog_payload(facets, q=value),
        catalog_payload(facets, sort=value, changed="catalog-sort.value"),
        catalog_payload(facets, values={facets[0]: value}, changed="catalog-url.search"),
        catalog_payload(facets, url_search=value, changed="catalog-url.search"),
    ):
        response = post(front, payload)
        assert response.status_code == 200, response.data[:200]
        grid = json.dumps(response.get_json()["response"]["catalog-grid"])
        # a long string is a real search that matches nothing; anything else is ignored
        assert "product-card" in grid or (isinstance(value, str) and "No products" in grid)
    for path, search in ((value, ""), ("/", value), ("/product/" + "x" * 5000, "")):
        response = post(front, render_payload(path, search))
        assert response.status_code == 200
        assert response.get_json()["response"]["page-content"]["children"] is not None


def test_broken_callback_requests_get_400_not_500(front: ShopFront, facets: list[str]) -> None:
    client = front.server.test_client()
    for body in ({}, {"output": "page-content.children"}, {"inputs": "x"}, [], "null"):
        response = client.post(CALLBACK_URL, json=body)
        assert 400 <= response.status_code < 500, (body, response.status_code)
    payload = catalog_payload(facets)
    payload["inputs"][3] = [{"id": "not-a-dict", "property": "value", "value": []}]
    assert 200 <= post(front, payload).status_code < 500
    assert client.post(CALLBACK_URL, data="{not json",
                       content_type="application/json").status_code == 400
    nested = "[" * 100_000 + "]" * 100_000  # under the body limit, over the parser's depth
    assert client.post(CALLBACK_URL, data=nested,
                       content_type="application/json").status_code == 400
    assert client.get("/").status_code == 200  # still serving


# --------------------------------------------------------------------------- bounded memory


def test_made_up_attribute_names_never_grow_a_cache(front: ShopFront) -> None:
    cached_figure.cache_clear()
    for i in range(300):
        response = post(front, explore_payload(f"made-up-{i}"))
        assert response.status_code == 200
    assert cached_figure.cache_info().currsize == 1  # every one fell back to the default


def test_memory_is_flat_over_1000_hostile_requests(tmp_path: Path) -> None:
    folder = make_fake_precomputed(tmp_path / "mem", 3000, k=5, thumbs=False)
    code = f"""
import json, sys, psutil
sys.path.insert(0, {str(ROOT)!r})
from shopfront import create_app
from tests.dash_http import catalog_payload, explore_payload, render_payload
front = create_app({str(folder)!r})
client = front.server.test_client()
facets = [f.name for f in front.shop.facets]
def burst(n, tag):
    for i in range(n):
        client.post("/_dash-update-component", json=explore_payload(f"{{tag}}-{{i}}"))
        client.post("/_dash-update-component",
                    json=catalog_payload(facets, q=f"{{tag}} {{i}} " * 20,
                                         values={{facets[0]: [f"x{{j}}" for j in range(50)]}}))
        client.post("/_dash-update-component", json=render_payload(f"/product/{{tag}}-{{i}}"))
        client.get(f"/no/such/{{tag}}/{{i}}")
burst(200, "warm")
before = psutil.Process().memory_info().rss
burst(1000, "attack")
after = psutil.Process().memory_info().rss
print(json.dumps([before, after]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert after - before < 8 * 2**20, f"grew {(after - before) / 2**20:.1f} MiB"
    assert psutil  # imported for the child process's sake


# --------------------------------------------------------------------------- headers


def test_security_headers(front: ShopFront) -> None:
    client = front.server.test_client()
    for path in ("/", "/product/p001", "/nope", "/thumbs/p001.jpg", "/_dash-layout"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "object-src 'none'" in csp
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src  # inline scripts only by hash
        assert "Server" not in headers or "gunicorn" not in headers["Server"]


def test_external_thumbnail_host_is_allowed_by_the_csp(tmp_path: Path) -> None:
    folder = make_fake_precomputed(tmp_path / "cdn", 20, k=3, thumbs=False)
    products = json.loads((folder / "products.json").read_text())
    for p in products:
        p["thumb"] = f"https://cdn.example.com/shop/thumbs/{p['id']}.jpg"
    (folder / "products.json").write_text(json.dumps(products))
    front = create_app(folder)
    item = front.shop.item("p01")
    assert item is not None and item.thumb_url == "https://cdn.example.com/shop/thumbs/p01.jpg"
    csp = front.server.test_client().get("/").headers["Content-Security-Policy"]
    assert "https://cdn.example.com" in csp
    assert front.server.test_client().get("/thumbs/p01.jpg").status_code == 404


# --------------------------------------------------------------------------- damaged folders


def damaged(tmp_path: Path, name: str, change: Any) -> Path:
    folder = make_fake_precomputed(tmp_path / name, 12, k=3, thumbs=False)
    products = json.loads((folder / "products.json").read_text())
    neighbours = json.loads((folder / "neighbours.json").read_text())
    result = change(products, neighbours)
    if isinstance(result, bytes):
        (folder / "products.json").write_bytes(result)
        return folder
    (folder / "products.json").write_text(json.dumps(products), encoding="utf-8")
    (folder / "neighbours.json").write_text(json.dumps(neighbours), encoding="utf-8")
    return folder


def set_first(key: str, value: Any) -> Any:
    def change(products: list[dict[str, Any]], neighbours: dict[str, Any]) -> None:
        products[0][key] = value
    return change


def first_score(value: Any) -> Any:
    def change(products: list[dict[str, Any]], neighbours: dict[str, Any]) -> None:
        neighbours[products[0]["id"]][0][1] = value
    return change


def duplicate_id(products: list[dict[str, Any]], neighbours: dict[str, Any]) -> None:
    products[1]["id"] = products[0]["id"]


def not_utf8(products: list[dict[str, Any]], neighbours: dict[str, Any]) -> bytes:
    return json.dumps(products).encode("utf-8").replace(b'"title": "', b'"title": "\xe4', 1)


def nan_score(products: list[dict[str, Any]], neighbours: dict[str, Any]) -> bytes:
    neighbours[products[0]["id"]][0][1] = 0.5
    return json.dumps(products).replace('"price": null', '"price": NaN', 1).encode()


@pytest.mark.parametrize(("name", "change", "says"), [
    ("list-id", set_first("id", ["p00"]), "id must be a non-empty string"),
    ("string-xy", set_first("xy", ["1", "2"]), "xy must be two finite numbers"),
    ("attrs-list", set_first("attrs", ["a", "b"]), "attrs must be an object"),
    ("title-number", set_first("title", 5), "title must be a string"),
    ("string-score", first_score("0.9"), "is not a finite number"),
    ("null-score", first_score(None), "is not a finite number"),
    ("duplicate", duplicate_id, "duplicate id"),
    ("latin1", not_utf8, "not UTF-8"),
    ("nan", nan_score, "NaN"),
])
def test_damaged_folder_fails_with_one_line(
    tmp_path: Path, name: str, change: Any, says: str
) -> None:
    folder = damaged(tmp_path, name, change)
    with pytest.raises(PrecomputedError) as err:
        Shop(folder)
    message = str(err.value)
    assert says in message and "\n" not in message, message
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "--precomputed", str(folder)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr


def test_force_https_behind_a_proxy(fake_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_FORCE_HTTPS", "1")
    monkeypatch.setenv("LOOKALIKE_HOSTS", "shop.example")
    client = create_app(fake_folder).server.test_client()
    plain = client.get("/product/p001")
    assert plain.status_code in (301, 302) and plain.headers["Location"].startswith("https://")
    proxied = client.get("/product/p001", headers={"X-Forwarded-Proto": "https",
                                                   "X-Forwarded-Host": "shop.example"})
    assert proxied.status_code == 200
    assert "max-age=" in proxied.headers["Strict-Transport-Security"]
    page = proxied.get_data(as_text=True)
    assert 'content="https://shop.example/thumbs/p001.jpg"' in page  # og:image


# --------------------------------------------------------------------------- round 2 (issue 22)

ODD_IDS = {"p01": "LK-BAG-001", "p02": "a/b", "p03": "Café 7", "p04": "100%"}
UNSAFE_SHOP_URLS = {"p05": "javascript:alert(document.domain)", "p06": " \tJaVa\nScRiPt:alert(1)",
                    "p07": "data:text/html,<script>alert(1)</script>", "p08": "vbscript:msgbox(1)"}


@pytest.fixture(scope="module")
def odd_front(tmp_path_factory: pytest.TempPathFactory) -> ShopFront:
    """A shop whose ids need quoting in URLs and whose shop links are not all http(s)."""
    folder = make_fake_precomputed(tmp_path_factory.mktemp("odd") / "odd", 30, k=3,
                                   thumbs=False)
    products = json.loads((folder / "products.json").read_text())
    for p in products:
        p["product_url"] = UNSAFE_SHOP_URLS.get(p["id"], p["product_url"])
    (folder / "products.json").write_text(json.dumps(products), encoding="utf-8")
    for name in ("products.json", "neighbours.json", "neighbours-other_colours.json"):
        text = (folder / name).read_text(encoding="utf-8")
        for old, new in ODD_IDS.items():
            text = text.replace(f'"{old}"', json.dumps(new))
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "shop.sqlite").unlink()  # derived again from the edited JSON
    return create_app(folder)


def test_product_urls_are_decoded_once(odd_front: ShopFront) -> None:
    client = odd_front.server.test_client()
    for product_id in ODD_IDS.values():
        item = odd_front.shop.item(product_id)
        assert item is not None
        response = client.get(item.href)
        assert response.status_code == 200, item.href
        assert f"<title>{html.escape(item.title)} · " in response.get_data(as_text=True)
    assert client.get("/product/100%25").status_code == 200  # "100%", decoded once
    # decoded twice, this would be LK-BAG-001 (and "100%" would be "100" plus a NUL)
    for twice in ("/product/LK%252DBAG-001", "/product/100%2525", "/product/a%252Fb"):
        assert client.get(twice).status_code == 404, twice


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("/product//LK-BAG-001", "/product/LK-BAG-001"),
    ("/product/LK-BAG-001/", "/product/LK-BAG-001"),
    ("/product/LK-BAG-001%2F", "/product/LK-BAG-001"),
    ("/product/%2FLK-BAG-001", "/product/LK-BAG-001"),
    ("/product/%4CK-BAG-001", "/product/LK-BAG-001"),
    ("/product/a/b", "/product/a%2Fb"),
    ("/product/Caf%c3%a9%207", "/product/Caf%C3%A9%207"),
    ("/product/LK-BAG-001/?utm_source=x", "/product/LK-BAG-001?utm_source=x"),
])
def test_other_spellings_of_a_product_url_redirect(
    odd_front: ShopFront, spelling: str, canonical: str
) -> None:
    client = odd_front.server.test_client()
    response = client.get(spelling)
    assert response.status_code in (301, 308), spelling
    assert response.headers["Location"] == canonical
    assert client.get(canonical).status_code == 200


@pytest.mark.parametrize("path", ["/product/LK-BAG-002/", "/product//", "/product/%2F",
                                  "/product/%FF", "/product/LK-BAG-001%00"])
def test_product_urls_that_match_nothing_are_404(odd_front: ShopFront, path: str) -> None:
    assert odd_front.server.test_client().get(path).status_code == 404


def test_control_characters_are_not_echoed(front: ShopFront) -> None:
    client = front.server.test_client()
    for path in ("/?q=%00red%01%1b%7f", "/product/p%00x%01", "/?q=%C2%85red"):
        page = client.get(path).get_data(as_text=True)
        assert not [c for c in page if ord(c) < 32 and c not in "\t\n\r"], path
        assert "\x7f" not in page and "\x85" not in page
    assert "“red” – search" in client.get("/?q=%00red").get_data(as_text=True)


def test_unsafe_shop_links_are_never_live(odd_front: ShopFront) -> None:
    client = odd_front.server.test_client()
    for product_id in UNSAFE_SHOP_URLS:
        page = client.get(f"/product/{product_id}").get_data(as_text=True).lower()
        hrefs = [h.replace("\t", "").replace("\n", "").strip()
                 for h in re.findall(r'href="([^"]*)"', page)]
        assert not [h for h in hrefs if re.match(r"(javascript|vbscript|data):", h)], hrefs
        assert "view in shop" not in page  # the link is left out, as with no URL at all
        callback = post(odd_front, render_payload(f"/product/{product_id}")).get_data(
            as_text=True)
        assert "product-shop-link" not in callback  # nor drawn by the app's renderer
    page = client.get("/product/p10").get_data(as_text=True)
    assert 'href="https://shop.example/p/p10"' in page  # http(s) links stay
    frame = to_html({"type": "A", "namespace": "dash_html_components",
                     "props": {"href": " javascript:alert(1)", "children": "x"}})
    assert frame == '<a href="about:blank">x</a>'


@pytest.mark.parametrize("path", [
    "/_dash-component-suites/nope/x.js",
    "/_dash-component-suites/dash/nope.js",
    "/_dash-component-suites/dash/deps/",
    "/_dash-component-suites/dash/%00.js",
    "/_dash-component-suites/plotly/package_data/nope.v9_9_9m1.min.js",
])
def test_unknown_component_suite_paths_are_404_without_a_traceback(
    front: ShopFront, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = front.server.test_client().get(path)
    assert response.status_code == 404
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def og_urls(page: str) -> list[str]:
    return re.findall(r'<meta property="og:(?:url|image)" content="([^"]*)"', page)


def test_host_header_is_never_reflected_without_a_host_list(front: ShopFront) -> None:
    for host in ("evil.example", "evil.example:8080"):
        headers = {"Host": host, "X-Forwarded-Host": "evil.example"}
        page = front.server.test_client().get("/product/p001", headers=headers).get_data(
            as_text=True)
        assert "evil" not in page
        assert og_urls(page) == ["/thumbs/p001.jpg"]  # no og:url, a path for og:image


def test_only_listed_hosts_make_urls(fake_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_HOSTS", "shop.example, www.shop.example,localhost:8050")
    client = create_app(fake_folder).server.test_client()
    shown_as = {"evil.example": "shop.example", "www.shop.example": "www.shop.example",
                "WWW.Shop.Example": "www.shop.example", "localhost:8050": "localhost:8050",
                "localhost:9999": "shop.example", "": "shop.example"}
    for host, shown in shown_as.items():
        headers = {"Host": host, "X-Forwarded-Host": "evil.example"}
        page = client.get("/product/p001", headers=headers).get_data(as_text=True)
        assert og_urls(page) == [f"http://{shown}/product/p001",
                                 f"http://{shown}/thumbs/p001.jpg"], host


def test_force_https_redirects_only_to_listed_hosts(
    fake_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOKALIKE_FORCE_HTTPS", "1")
    monkeypatch.setenv("LOOKALIKE_HOSTS", "shop.example")
    client = create_app(fake_folder).server.test_client()
    for headers in ({"X-Forwarded-Host": "evil.example"}, {"Host": "evil.example"},
                    {"Host": "shop.example", "X-Forwarded-Host": "evil.example"}):
        response = client.get("/product/p001?x=1", headers=headers)
        assert response.status_code in (301, 302)
        assert response.headers["Location"] == "https://shop.example/product/p001?x=1"
    proxied = client.get("/product/p001", headers={"X-Forwarded-Proto": "https",
                                                   "X-Forwarded-Host": "evil.example"})
    assert proxied.status_code == 200
    assert og_urls(proxied.get_data(as_text=True)) == [
        "https://shop.example/product/p001", "https://shop.example/thumbs/p001.jpg"]


@pytest.mark.parametrize(("hosts", "says"), [
    ("", "LOOKALIKE_FORCE_HTTPS=1 needs LOOKALIKE_HOSTS"),
    ("shop.example/evil", "not a host name"),
    ("https://shop.example", "not a host name"),
])
def test_force_https_needs_a_valid_host_list(
    fake_folder: Path, monkeypatch: pytest.MonkeyPatch, hosts: str, says: str
) -> None:
    monkeypatch.setenv("LOOKALIKE_FORCE_HTTPS", "1")
    monkeypatch.setenv("LOOKALIKE_HOSTS", hosts)
    with pytest.raises(HostConfigError, match=says) as err:
        create_app(fake_folder)
    assert "\n" not in str(err.value)
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "--precomputed",
                             str(fake_folder)], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env={**os.environ})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr
