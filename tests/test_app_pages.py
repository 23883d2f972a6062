"""Pages, routes and callbacks of the app, through pure functions and Flask's test client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dash.development.base_component import Component

import app as entry
from shopfront import Shop, ShopFront, create_app, render_page
from shopfront.pages import STATIC_PAGES
from shopfront.pages.about import about_rows
from shopfront.pages.explore import SCATTERGL_FROM, cached_figure, explore_figure
from shopfront.query import CatalogQuery
from shopfront.router import Head, Page, View
from shopfront.shop import PLACEHOLDER_URL
from tests.dash_http import CALLBACK_URL, catalog_payload, render_payload
from tests.fake_precomputed import HTML_TITLE, make_fake_precomputed

ROOT = Path(entry.__file__).resolve().parent


def page_of(shop: Shop, path: str, search: str = "") -> Any:
    """The layout of a URL's page."""
    return render_page(shop, STATIC_PAGES, path, search).layout


@pytest.fixture(scope="module")
def shop(fake_folder: Path) -> Shop:
    return Shop(fake_folder)


@pytest.fixture(scope="module")
def front(fake_folder: Path) -> ShopFront:
    return create_app(fake_folder)


def walk(node: Any) -> list[Any]:
    """Every component (object or wire-format dict) and string in a layout tree."""
    out = [node]
    if isinstance(node, Component):
        children = getattr(node, "children", None)
    elif isinstance(node, dict) and "namespace" in node:
        children = node["props"].get("children")
    elif isinstance(node, list | tuple):
        children = node
    else:
        return out
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None:
            out.extend(walk(child))
    return out


def texts(node: Any) -> list[str]:
    return [n for n in walk(node) if isinstance(n, str)]


def node_id(node: Any) -> Any:
    if isinstance(node, dict) and "namespace" in node:
        return node["props"].get("id")
    return getattr(node, "id", None)


def ids(node: Any) -> list[Any]:
    return [node_id(n) for n in walk(node) if not isinstance(n, str)]


def prop(node: Any, name: str) -> Any:
    return node["props"].get(name) if isinstance(node, dict) else getattr(node, name)


# --------------------------------------------------------------------------- product page


def test_product_page_shows_item_and_k_similar_cards(shop: Shop, fake_folder: Path) -> None:
    page = page_of(shop, "/product/p003")
    item = shop.item("p003")
    assert item is not None
    assert item.title in texts(page)
    cards = [i for i in ids(page) if isinstance(i, dict) and i.get("type") == "product-card"]
    neighbours = json.loads((fake_folder / "neighbours.json").read_text())
    others = json.loads((fake_folder / "neighbours-other_colours.json").read_text())
    # the rows in meta.json's order: "Looks like this", then "Same style, other colours"
    expected = [n for n, _ in neighbours["p003"]] + [n for n, _ in others["p003"]]
    assert [c["id"] for c in cards] == expected
    assert len(cards) == 16
    assert "Looks like this" in texts(page) and "Same style, other colours" in texts(page)
    assert not any(t.endswith("% match") for t in texts(page))  # no raw numbers
    labels = [t for t in texts(page) if t.endswith(" match")]
    assert len(labels) == 16 and set(labels) <= {"Very close match", "Close match", "Loose match"}
    links = [n for n in walk(page) if node_id(n) == "product-shop-link"]
    assert links and prop(links[0], "href") == item.product_url
    assert prop(links[0], "target") == "_blank"


def test_product_without_shop_url_has_no_shop_link(shop: Shop) -> None:
    page = page_of(shop, "/product/p004")  # every 5th has no product_url
    assert shop.item("p004").product_url is None  # type: ignore[union-attr]
    assert "product-shop-link" not in ids(page)


def test_html_in_titles_stays_text(shop: Shop, front: ShopFront) -> None:
    page = page_of(shop, "/product/p000")
    assert HTML_TITLE in texts(page)  # a plain string child: React renders it as text
    assert not any(type(n).__name__ in ("Markdown", "Iframe", "Script") for n in walk(page))
    fig = explore_figure(shop, "gender")
    hover = [t for trace in fig["data"] for t in trace["text"]]
    assert not any("<b>" in t or "<script>" in t for t in hover)
    assert any("&lt;b&gt;Bold&lt;/b&gt;" in t for t in hover)
    document = front.server.test_client().get("/product/p000").get_data(as_text=True)
    assert "<script>alert" not in document  # the server-rendered frame escapes it too
    assert "&lt;script&gt;alert(&#x27;x&#x27;)" in document or "&lt;script&gt;" in document


def test_euclidean_labels_read_small_distances_as_close(fake_folder_euclidean: Path) -> None:
    shop = Shop(fake_folder_euclidean)
    page = page_of(shop, "/product/p01")
    words = texts(page)
    assert not any(t.endswith("% match") for t in words)
    labels = [t for t in words if t.endswith(" match")]
    found = shop.product_rows("p01")
    assert found is not None
    pairs = found[1][0].pairs
    assert [s for _, s in pairs] == sorted(s for _, s in pairs)  # distances, closest first
    order = {"Very close match": 0, "Close match": 1, "Loose match": 2}
    assert [order[t] for t in labels] == sorted(order[t] for t in labels)


def test_unknown_product_and_path_get_404(shop: Shop) -> None:
    view = render_page(shop, STATIC_PAGES, "/product/does-not-exist")
    assert view.head.status == 404
    assert "not-found" in ids(view.layout)
    assert any("does-not-exist" in t for t in texts(view.layout))
    assert "not-found" in ids(page_of(shop, "/no/such/page"))
    assert render_page(shop, STATIC_PAGES, "/no/such/page").head.status == 404
    assert render_page(shop, STATIC_PAGES, "/product/p001").head.status == 200


# --------------------------------------------------------------------------- other pages


def test_catalog_page_from_url(shop: Shop) -> None:
    page = page_of(shop, "/", "?gender=Men&page=2")
    dropdowns = [n for n in walk(page) if node_id(n) == {
        "type": "catalog-filter", "attr": "gender"}]
    assert dropdowns[0].value == ["Men"]
    current = [n for n in walk(page)
               if isinstance(n, dict) and n["props"].get("aria-current") == "page"]
    assert [n["props"]["children"] for n in current] == ["2"]
    cards = [i for i in ids(page) if isinstance(i, dict) and i.get("type") == "product-card"]
    _, _, men = shop.matching(CatalogQuery(filters=(("gender", ("Men",)),)), 1000)
    assert [c["id"] for c in cards] == [item.id for item in men[24:48]]


def test_explore_figure(shop: Shop) -> None:
    fig = explore_figure(shop, "gender")
    assert {t["type"] for t in fig["data"]} == {"scatter"}  # small catalog: SVG
    assert sum(len(t["customdata"]) for t in fig["data"]) == 120
    assert sorted(t["name"].split(" (")[0] for t in fig["data"]) == ["Men", "Unisex", "Women"]
    assert cached_figure(shop, "gender") is cached_figure(shop, "gender")


def test_explore_figure_uses_webgl_for_big_catalogs(tmp_path: Path) -> None:
    folder = make_fake_precomputed(tmp_path / "big", SCATTERGL_FROM, k=2, thumbs=False)
    shop = Shop(folder)
    assert {t["type"] for t in explore_figure(shop, "baseColour")["data"]} == {"scattergl"}
    assert shop.item("p0000").thumb_url == PLACEHOLDER_URL  # type: ignore[union-attr]


def test_about_page_reads_meta(shop: Shop) -> None:
    rows = dict(about_rows(shop))
    assert rows["Products"] == "120"
    assert rows["Model"] == "mobilenet-v1-fake"
    assert rows["Layer"] == "dw13-gap"
    assert rows["Similar products per item (k)"] == "8"
    assert rows["Similarity"].startswith("cosine")
    assert rows["Built"] == "2025-01-02 03:04 UTC"
    assert "mobilenet-v1-fake" in texts(page_of(shop, "/about"))


def test_pages_registry_is_extensible(fake_folder: Path) -> None:
    extra = Page("/upload", "Search by photo",
                 lambda shop, rest, search: View("upload here", Head("Upload")))
    front = create_app(fake_folder, extra_pages=[extra])
    assert front.pages[-1] is extra
    assert render_page(front.shop, front.pages, "/upload").layout == "upload here"
    document = front.server.test_client().get("/upload").get_data(as_text=True)
    assert "<title>Upload · lookalike</title>" in document


# --------------------------------------------------------------------------- HTTP


def test_thumbnail_route(front: ShopFront, fake_folder: Path) -> None:
    client = front.server.test_client()
    response = client.get("/thumbs/p001.jpg")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data == (fake_folder / "thumbs" / "p001.jpg").read_bytes()
    assert "max-age=" in response.headers["Cache-Control"]
    assert "public" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = client.get("/thumbs/p001.jpg", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert client.get("/thumbs/nope.jpg").status_code == 404
    traversal = client.get("/thumbs/..%2Fmeta.json.jpg")
    assert b"schema_version" not in traversal.data


def test_render_callback_over_http(front: ShopFront) -> None:
    client = front.server.test_client()
    response = client.post(CALLBACK_URL, json=render_payload("/product/p002"))
    assert response.status_code == 200
    out = response.get_json()["response"]
    body = json.dumps(out["page-content"])
    assert "similar-products" in body and "product-card" in body
    assert out["page-title"]["data"].endswith("· lookalike")


def test_catalog_callback_over_http(front: ShopFront, shop: Shop) -> None:
    client = front.server.test_client()
    deps = client.get("/_dash-dependencies").get_json()
    payload = catalog_payload([f.name for f in shop.facets], q="red")
    assert any(d["output"] == payload["output"] for d in deps)
    response = client.post(CALLBACK_URL, json=payload)
    assert response.status_code == 200, response.data[:300]
    out = response.get_json()["response"]
    n_red = shop.matching(CatalogQuery(q="red"), 1)[0]
    assert out["catalog-count"]["children"].startswith(f"{n_red} products")
    assert out["catalog-url"]["search"] == "?q=red"


def test_index_serves_local_bootstrap(front: ShopFront) -> None:
    client = front.server.test_client()
    index = client.get("/product/p001").get_data(as_text=True)
    assert "bootstrap.min.css" in index
    sources = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]*)"', index)
    assert sources and all(src.startswith("/") for src in sources), sources
    css = client.get("/assets/bootstrap.min.css")
    assert css.status_code == 200 and b"Bootstrap" in css.data[:200]


# --------------------------------------------------------------------------- start-up


def run_app(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_missing_folder_stops_start_up_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    result = run_app("--precomputed", str(missing), "--port", "1")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "not found" in lines[0]


def test_invalid_folder_names_the_problem(tmp_path: Path) -> None:
    folder = make_fake_precomputed(tmp_path / "old", 5, k=2)
    meta = json.loads((folder / "meta.json").read_text())
    meta["schema_version"] = 99
    (folder / "meta.json").write_text(json.dumps(meta))
    result = run_app(env={entry.ENV_VAR: str(folder)})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "schema_version 99" in result.stderr and str(folder) in result.stderr
    (folder / "products.json").write_text("[{broken")
    meta["schema_version"] = 1
    (folder / "meta.json").write_text(json.dumps(meta))
    result = run_app("--precomputed", str(folder))
    assert result.returncode != 0 and "not valid JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_gunicorn_entry_point_reads_env(fake_folder: Path) -> None:
    code = "import app; s = app.server; print(type(s).__name__, app._started.front.shop.n_products)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", entry.ENV_VAR: str(fake_folder)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Flask", "120"]


def test_dynamic_mode_offers_search_by_photo_on_the_catalog(fake_folder: Path) -> None:
    search = Page("/search", "Search by photo",
                  lambda shop, rest, search: View("upload here", Head("Search by photo")))
    with_photo = create_app(fake_folder, extra_pages=[search])
    assert "catalog-photo-search" in ids(render_page(with_photo.shop, with_photo.pages, "/").layout)
    static = create_app(fake_folder)
    assert "catalog-photo-search" not in ids(render_page(static.shop, static.pages, "/").layout)


def test_version_1_folders_are_still_served(fake_folder: Path, tmp_path: Path) -> None:
    """A folder written before recommendation rows (schema 1: one neighbours.json, no
    calibration) gets its index derived and shows one row, without match labels."""
    import shutil

    old = tmp_path / "v1"
    shutil.copytree(fake_folder, old, ignore=shutil.ignore_patterns("shop.sqlite",
                                                                     "neighbours-*.json"))
    meta = json.loads((old / "meta.json").read_text())
    for key in ("rows", "whitening", "colour", "prefer"):
        meta.pop(key, None)
    meta["schema_version"] = 1
    (old / "meta.json").write_text(json.dumps(meta))
    shop = Shop(old)
    assert [r.key for r in shop.rows] == ["similar"] and shop.rows[0].quantiles == ()
    page = page_of(shop, "/product/p003")
    words = texts(page)
    assert "Looks like this" in words and "Same style, other colours" not in words
    assert not [t for t in words if t.endswith(" match")]  # uncalibrated: no labels
    cards = [i for i in ids(page) if isinstance(i, dict) and i.get("type") == "product-card"]
    neighbours = json.loads((old / "neighbours.json").read_text())
    assert [c["id"] for c in cards] == [n for n, _ in neighbours["p003"]]
