"""Pages, routes and callbacks of the app, through pure functions and Flask's test client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dash.development.base_component import Component

import app as lookalike
from tests.fake_precomputed import HTML_TITLE, make_fake_precomputed

ROOT = Path(lookalike.__file__).resolve().parent


@pytest.fixture(scope="module")
def catalog(fake_folder: Path) -> lookalike.Catalog:
    return lookalike.Catalog.load(fake_folder)


@pytest.fixture(scope="module")
def dash_app(fake_folder: Path) -> Any:
    return lookalike.create_app(fake_folder)


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


def dash_post(client: Any, output: str, inputs: list[dict], state: list[dict] | None = None,
              changed: list[str] | None = None) -> dict:
    """POST one callback the way the browser does; returns the JSON response."""
    payload = {
        "output": output,
        "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
        "inputs": inputs,
        "state": state or [],
        "changedPropIds": changed or [f"{i['id']}.{i['property']}" for i in inputs],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code in (200, 204), response.data[:500]
    return response.get_json() if response.status_code == 200 else {}


# --------------------------------------------------------------------------- product page


def test_product_page_shows_item_and_k_similar_cards(catalog: lookalike.Catalog) -> None:
    page = lookalike.render_page(catalog, "/product/p003")
    item = catalog.item("p003")
    assert item is not None
    assert item.title in texts(page)
    cards = [i for i in ids(page) if isinstance(i, dict) and i.get("type") == "product-card"]
    expected = [catalog.items[j].id for j, _ in catalog.neighbours[catalog.index["p003"]]]
    assert [c["id"] for c in cards] == expected
    assert len(cards) == 8
    assert any(t.endswith("% match") for t in texts(page))
    links = [n for n in walk(page) if node_id(n) == "product-shop-link"]
    assert links and prop(links[0], "href") == item.product_url
    assert prop(links[0], "target") == "_blank"


def test_product_without_shop_url_has_no_shop_link(catalog: lookalike.Catalog) -> None:
    page = lookalike.render_page(catalog, "/product/p004")  # every 5th has no product_url
    assert catalog.item("p004").product_url is None  # type: ignore[union-attr]
    assert "product-shop-link" not in ids(page)


def test_html_in_titles_stays_text(catalog: lookalike.Catalog) -> None:
    page = lookalike.render_page(catalog, "/product/p000")
    assert HTML_TITLE in texts(page)  # a plain string child: React renders it as text
    assert not any(type(n).__name__ in ("Markdown", "Iframe", "Script") for n in walk(page))
    fig = lookalike.explore_figure(catalog, "gender")
    hover = [t for trace in fig.data for t in trace.text]
    assert not any("<b>" in t or "<script>" in t for t in hover)
    assert any("&lt;b&gt;Bold&lt;/b&gt;" in t for t in hover)


def test_euclidean_catalog_shows_rank_not_percent(fake_folder_euclidean: Path) -> None:
    catalog = lookalike.Catalog.load(fake_folder_euclidean)
    page = lookalike.render_page(catalog, "/product/p01")
    words = texts(page)
    assert "Closest match" in words and "#2 closest" in words
    assert not any(t.endswith("% match") for t in words)
    assert any("lower is closer" in t for t in words)


def test_unknown_product_and_path_get_404(catalog: lookalike.Catalog) -> None:
    page = lookalike.render_page(catalog, "/product/does-not-exist")
    assert "not-found" in ids(page)
    assert any("does-not-exist" in t for t in texts(page))
    assert "not-found" in ids(lookalike.render_page(catalog, "/no/such/page"))


# --------------------------------------------------------------------------- other pages


def test_catalog_page_from_url(catalog: lookalike.Catalog) -> None:
    page = lookalike.render_page(catalog, "/", "?gender=Men&page=2")
    dropdowns = [n for n in walk(page) if node_id(n) == {
        "type": "catalog-filter", "attr": "gender"}]
    assert dropdowns[0].value == ["Men"]
    pagination = next(n for n in walk(page) if node_id(n) == "catalog-pagination")
    assert pagination.active_page == 2
    cards = [i for i in ids(page) if isinstance(i, dict) and i.get("type") == "product-card"]
    expected = catalog.matching(lookalike.CatalogQuery(filters=(("gender", ("Men",)),)))
    assert [c["id"] for c in cards] == [catalog.items[i].id for i in expected[24:48]]


def test_explore_figure(catalog: lookalike.Catalog) -> None:
    fig = lookalike.explore_figure(catalog, "gender")
    assert {t.type for t in fig.data} == {"scatter"}  # small catalog: SVG
    assert sum(len(t.customdata) for t in fig.data) == 120
    assert sorted(t.name.split(" (")[0] for t in fig.data) == ["Men", "Unisex", "Women"]
    assert lookalike.figure_for(catalog, "gender") is lookalike.figure_for(catalog, "gender")


def test_explore_figure_uses_webgl_for_big_catalogs(tmp_path: Path) -> None:
    folder = make_fake_precomputed(tmp_path / "big", lookalike.SCATTERGL_FROM, k=2,
                                   thumbs=False)
    catalog = lookalike.Catalog.load(folder)
    assert {t.type for t in lookalike.explore_figure(catalog, "baseColour").data} == {
        "scattergl"}
    assert catalog.items[0].thumb_url == lookalike.PLACEHOLDER_URL  # no thumbs on disk


def test_about_page_reads_meta(catalog: lookalike.Catalog) -> None:
    rows = dict(lookalike.about_rows(catalog))
    assert rows["Products"] == "120"
    assert rows["Model"] == "mobilenet-v1-fake"
    assert rows["Layer"] == "dw13-gap"
    assert rows["Similar products per item (k)"] == "8"
    assert rows["Similarity"].startswith("cosine")
    assert rows["Built"] == "2025-01-02 03:04 UTC"
    assert "mobilenet-v1-fake" in texts(lookalike.render_page(catalog, "/about"))


def test_pages_registry_is_extensible(fake_folder: Path) -> None:
    extra = lookalike.Page("/upload", "Search by photo", lambda c, rest, search: "upload here")
    app = lookalike.create_app(fake_folder, extra_pages=[extra])
    assert app.pages[-1] is extra  # type: ignore[attr-defined]
    assert lookalike.render_page(app.catalog, "/upload", "", app.pages) == "upload here"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- HTTP


def test_thumbnail_route(dash_app: Any, fake_folder: Path) -> None:
    client = dash_app.server.test_client()
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


def test_render_callback_over_http(dash_app: Any) -> None:
    client = dash_app.server.test_client()
    result = dash_post(
        client, "page-content.children",
        [{"id": "url", "property": "pathname", "value": "/product/p002"}],
        [{"id": "url", "property": "search", "value": ""}],
    )
    body = json.dumps(result)
    assert "similar-products" in body and "product-card" in body


def test_catalog_callback_over_http(dash_app: Any, catalog: lookalike.Catalog) -> None:
    client = dash_app.server.test_client()
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if "catalog-grid.children" in d["output"])
    filters = [{"id": {"type": "catalog-filter", "attr": f.name}, "property": "value",
                "value": []} for f in catalog.facets]
    payload = {
        "output": dep["output"],
        "outputs": [
            {"id": "catalog-grid", "property": "children"},
            {"id": "catalog-count", "property": "children"},
            {"id": "catalog-pagination", "property": "max_value"},
            {"id": "catalog-pagination", "property": "active_page"},
            {"id": "catalog-search", "property": "value"},
            {"id": "catalog-sort", "property": "value"},
            [{"id": f["id"], "property": "value"} for f in filters],
            {"id": "catalog-url", "property": "search"},
        ],
        "inputs": [
            {"id": "catalog-url", "property": "search", "value": ""},
            {"id": "catalog-search", "property": "value", "value": "red"},
            {"id": "catalog-sort", "property": "value", "value": "featured"},
            filters,
            {"id": "catalog-pagination", "property": "active_page", "value": 1},
        ],
        "state": [],
        "changedPropIds": ["catalog-search.value"],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code == 200, response.data[:300]
    out = response.get_json()["response"]
    n_red = len(catalog.matching(lookalike.CatalogQuery(q="red")))
    assert out["catalog-count"]["children"].startswith(f"{n_red} products")
    assert out["catalog-url"]["search"] == "?q=red"


def test_index_serves_local_bootstrap(dash_app: Any) -> None:
    client = dash_app.server.test_client()
    index = client.get("/product/p001").get_data(as_text=True)
    assert "bootstrap.min.css" in index
    assert "cdn" not in index.lower() and "https://" not in index
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
    result = run_app(env={lookalike.ENV_VAR: str(folder)})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "schema_version 99" in result.stderr and str(folder) in result.stderr
    (folder / "products.json").write_text("[{broken")
    meta["schema_version"] = 1
    (folder / "meta.json").write_text(json.dumps(meta))
    result = run_app("--precomputed", str(folder))
    assert result.returncode != 0 and "not valid JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_gunicorn_entry_point_reads_env(fake_folder: Path) -> None:
    code = "import app; s = app.server; print(type(s).__name__, len(app.app.catalog.items))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", lookalike.ENV_VAR: str(fake_folder)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Flask", "120"]
