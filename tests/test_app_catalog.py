"""The app's data layer and catalog logic, called directly (no server, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import app as lookalike
from pipeline.precomputed import PrecomputedError
from tests.fake_precomputed import HTML_TITLE, make_fake_precomputed


@pytest.fixture(scope="module")
def catalog(fake_folder: Path) -> lookalike.Catalog:
    return lookalike.Catalog.load(fake_folder)


def test_fake_folder_is_schema_valid(fake_folder: Path) -> None:
    from pipeline.precomputed import read_precomputed

    pre = read_precomputed(fake_folder)
    assert len(pre.products) == 120 == pre.meta["n_products"]
    ids = [p["id"] for p in pre.products]
    assert ids == sorted(ids)
    for pid, pairs in pre.neighbours.items():
        assert len(pairs) == 8
        assert pid not in [n for n, _ in pairs]
        scores = [s for _, s in pairs]
        assert scores == sorted(scores, reverse=True)
    assert (fake_folder / "thumbs" / f"{ids[0]}.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_load_indexes_products_and_neighbours(catalog: lookalike.Catalog) -> None:
    assert len(catalog.items) == 120
    assert catalog.items[catalog.index["p001"]].id == "p001"
    assert all(len(n) == 8 for n in catalog.neighbours)
    assert catalog.items[0].title == HTML_TITLE
    assert catalog.items[0].thumb_url == "/thumbs/p000.jpg"
    assert catalog.metric == "cosine"


def test_facets_come_from_the_data(catalog: lookalike.Catalog) -> None:
    names = [f.name for f in catalog.facets]
    assert names == ["gender", "articleType", "baseColour"]
    gender = catalog.facets[0]
    assert gender.label == "Gender"
    assert {v for v, _ in gender.options} == {"Men", "Women", "Unisex"}
    assert sum(n for _, n in gender.options) == 120
    counts = [n for _, n in gender.options]
    assert counts == sorted(counts, reverse=True)


def test_facets_skip_unique_and_single_valued_attributes(tmp_path: Path) -> None:
    folder = make_fake_precomputed(
        tmp_path / "f", 30, attrs={"season": ["Summer"], "gender": ["Men", "Women"]}
    )
    products = json.loads((folder / "products.json").read_text())
    for i, p in enumerate(products):
        p["attrs"]["sku"] = f"sku-{i}"  # unique per product: not a filter
    (folder / "products.json").write_text(json.dumps(products))
    catalog = lookalike.Catalog.load(folder)
    assert [f.name for f in catalog.facets] == ["gender"]


def test_attribute_label() -> None:
    assert lookalike.attribute_label("baseColour") == "Base colour"
    assert lookalike.attribute_label("articleType") == "Article type"
    assert lookalike.attribute_label("sub_category") == "Sub category"
    assert lookalike.attribute_label("SKU") == "SKU"


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [
        (12.5, "EUR", "€12.50"),
        (1234, "USD", "$1,234.00"),
        (9.99, "SEK", "9.99 SEK"),
        (3, None, "3.00"),
        (None, "EUR", ""),
        ("n/a", "EUR", ""),
    ],
)
def test_format_price(price: object, currency: object, expected: str) -> None:
    assert lookalike.format_price(price, currency) == expected


def test_search_matches_all_words_in_title_or_attributes(catalog: lookalike.Catalog) -> None:
    rows = catalog.matching(lookalike.CatalogQuery(q="RED  jeans"))
    assert rows
    for i in rows:
        assert "red" in catalog.search_text[i] and "jeans" in catalog.search_text[i]
    expected = [
        i for i, text in enumerate(catalog.search_text) if "red" in text and "jeans" in text
    ]
    assert sorted(rows) == expected


def test_filters_or_within_and_across_attributes(catalog: lookalike.Catalog) -> None:
    query = lookalike.CatalogQuery(
        filters=(("gender", ("Men", "Women")), ("baseColour", ("Blue",)))
    )
    rows = catalog.matching(query)
    expected = [
        i
        for i, item in enumerate(catalog.items)
        if item.attrs["gender"] in ("Men", "Women") and item.attrs["baseColour"] == "Blue"
    ]
    assert rows == expected


def test_sort_by_price_puts_unknown_prices_last(catalog: lookalike.Catalog) -> None:
    rows = catalog.matching(lookalike.CatalogQuery(sort="price-asc"))
    prices = [catalog.items[i].price for i in rows]
    known = [p for p in prices if p is not None]
    assert known == sorted(known)
    assert prices[len(known) :] == [None] * (len(prices) - len(known))
    rows = catalog.matching(lookalike.CatalogQuery(sort="price-desc"))
    known = [catalog.items[i].price for i in rows if catalog.items[i].price is not None]
    assert known == sorted(known, reverse=True)


def test_query_string_round_trip(catalog: lookalike.Catalog) -> None:
    query = lookalike.parse_catalog_query(
        "?q=red+shirt&baseColour=Red&gender=Men&gender=Women&sort=price-asc&page=2", catalog
    )
    assert query == lookalike.CatalogQuery(
        q="red shirt",
        filters=(("gender", ("Men", "Women")), ("baseColour", ("Red",))),
        sort="price-asc",
        page=2,
    )
    assert lookalike.parse_catalog_query(lookalike.catalog_query_string(query), catalog) == query
    assert lookalike.catalog_query_string(lookalike.CatalogQuery()) == ""


def test_query_string_ignores_junk(catalog: lookalike.Catalog) -> None:
    query = lookalike.parse_catalog_query("?page=-3&sort=evil&nosuch=1&gender=Nobody", catalog)
    assert query.page == 1 and query.sort == "featured"
    assert query.filters == (("gender", ("Nobody",)),)
    assert catalog.matching(query) == []


def test_catalog_results_paginate(catalog: lookalike.Catalog) -> None:
    body, n_pages, page, count = lookalike.catalog_results(
        catalog, lookalike.CatalogQuery(page=99)
    )
    assert n_pages == 5  # 120 products, 24 per page
    assert page == 5  # clamped to the last page
    assert count == "120 products · showing 97–120"
    cards = body["props"]["children"]  # a grid in Dash's wire format
    assert len(cards) == 24


def test_catalog_results_empty(catalog: lookalike.Catalog) -> None:
    body, n_pages, page, count = lookalike.catalog_results(
        catalog, lookalike.CatalogQuery(q="no-such-product-anywhere")
    )
    assert (n_pages, page, count) == (1, 1, "0 products")
    assert "No products match" in str(body.to_plotly_json())


def test_sync_catalog_control_change_resets_page_and_sets_url(
    catalog: lookalike.Catalog,
) -> None:
    out = lookalike.sync_catalog(
        catalog, "control", "?page=3", "blue", "featured", {"gender": ["Men"]}, 3
    )
    _, _, _, page, q, sort, filter_values, new_search = out
    assert page == 1
    assert (q, sort) == ("blue", "featured")
    assert filter_values == [["Men"], [], []]
    assert new_search == "?q=blue&gender=Men"


def test_sync_catalog_page_change_keeps_filters(catalog: lookalike.Catalog) -> None:
    out = lookalike.sync_catalog(catalog, "page", "", "", "featured", {}, 2)
    assert out[3] == 2 and out[7] == "?page=2"


def test_sync_catalog_url_change_drives_controls(catalog: lookalike.Catalog) -> None:
    out = lookalike.sync_catalog(
        catalog, "url", "?q=red&baseColour=Red", "stale", "price-asc", {"gender": ["Men"]}, 4
    )
    _, _, _, page, q, sort, filter_values, new_search = out
    assert (page, q, sort) == (1, "red", "featured")
    assert filter_values == [[], [], ["Red"]]
    assert new_search is lookalike.no_update


def test_similarity_display_cosine() -> None:
    badge, fraction, explanation = lookalike.similarity_display(0.923, 1, "cosine", 0.923)
    assert badge == "92% match"
    assert fraction == pytest.approx(0.923)
    assert "cosine" in explanation
    assert lookalike.similarity_display(-0.2, 3, "cosine", 0.9)[:2] == ("0% match", 0.0)


def test_similarity_display_euclidean_is_rank_and_relative() -> None:
    first = lookalike.similarity_display(10.0, 1, "euclidean", 10.0)
    third = lookalike.similarity_display(20.0, 3, "euclidean", 10.0)
    assert first[:2] == ("Closest match", 1.0)
    assert third[0] == "#3 closest"
    assert third[1] == pytest.approx(0.5)
    assert "lower is closer" in third[2]


def test_clicked_product_path(catalog: lookalike.Catalog) -> None:
    click = {"points": [{"customdata": "p005", "x": 1, "y": 2}]}
    assert lookalike.clicked_product_path(click, catalog) == "/product/p005"
    assert lookalike.clicked_product_path({"points": [{"customdata": "nope"}]}, catalog) is None
    assert lookalike.clicked_product_path(None, catalog) is None
    assert lookalike.clicked_product_path({"points": []}, catalog) is None


def test_missing_folder_raises_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PrecomputedError) as err:
        lookalike.Catalog.load(tmp_path / "nothing-here")
    assert "nothing-here" in str(err.value) and "\n" not in str(err.value)


def test_folder_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lookalike.ENV_VAR, raising=False)
    assert lookalike.precomputed_folder() == lookalike.DEFAULT_FOLDER
    monkeypatch.setenv(lookalike.ENV_VAR, "/somewhere/else")
    assert lookalike.precomputed_folder() == Path("/somewhere/else")
    assert lookalike.precomputed_folder("cli/wins") == Path("cli/wins")


def test_text_index_matches_naive_substring_search(catalog: lookalike.Catalog) -> None:
    index = catalog.text_index
    for word in ["red", "e", "shirts", "tshirt", "<b>bold</b>", "1", "zzz", "men", "x\")"]:
        expected = {i for i, text in enumerate(catalog.search_text) if word in text}
        assert index.rows_containing(word) == expected, word
    both = index.rows_containing_all(["red", "jeans"])
    assert both == {i for i, t in enumerate(catalog.search_text) if "red" in t and "jeans" in t}


def test_similarity_display_is_relative_to_the_catalog_baseline() -> None:
    badge, fraction, explanation = lookalike.similarity_display(0.99, 1, "cosine", 0.99, 0.97)
    assert badge == "67% match" and fraction == pytest.approx(2 / 3)
    assert "typical products" in explanation
    assert lookalike.similarity_display(0.95, 2, "cosine", 0.99, 0.97)[:2] == ("0% match", 0.0)
    assert lookalike.similarity_display(1.0, 1, "cosine", 1.0, 0.97)[0] == "100% match"
