"""The shop front under hostile and odd requests: bounded cost, bounded memory, a default
view instead of an error, limits and headers, and one-line errors for a damaged folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.precomputed import PrecomputedError
from shopfront import Shop, ShopFront, create_app
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
    client = create_app(fake_folder).server.test_client()
    plain = client.get("/product/p001")
    assert plain.status_code in (301, 302) and plain.headers["Location"].startswith("https://")
    proxied = client.get("/product/p001", headers={"X-Forwarded-Proto": "https",
                                                   "X-Forwarded-Host": "shop.example"})
    assert proxied.status_code == 200
    assert "max-age=" in proxied.headers["Strict-Transport-Security"]
    page = proxied.get_data(as_text=True)
    assert 'content="https://shop.example/thumbs/p001.jpg"' in page  # og:image
