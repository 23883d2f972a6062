"""The shop front's data layer and catalog logic, called directly (no server, no browser)."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from dash import no_update

import app as entry
from pipeline.precomputed import PrecomputedError, read_precomputed
from pipeline.shop_index import singular
from shopfront import Shop
from shopfront.components import match_label
from shopfront.pages.catalog import catalog_results, sync_catalog
from shopfront.pages.explore import clicked_product_path
from shopfront.query import CatalogQuery, catalog_query_string, parse_catalog_query
from shopfront.text import attribute_label, format_price
from tests.fake_precomputed import HTML_TITLE, make_fake_precomputed


@pytest.fixture(scope="module")
def shop(fake_folder: Path) -> Shop:
    return Shop(fake_folder)


@pytest.fixture(scope="module")
def products(fake_folder: Path) -> list[dict[str, Any]]:
    return json.loads((fake_folder / "products.json").read_text(encoding="utf-8"))


def fold(text: str) -> list[str]:
    """Words of a text, lowercase, without diacritics, compounds also joined."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.casefold())
                    if not unicodedata.combining(c))
    joined = [re.sub(r"['’-]", "", m) for m in re.findall(r"[^\W_]+(?:['’-][^\W_]+)+", plain)]
    return re.findall(r"[^\W_]+", plain) + joined


def words_of(product: dict[str, Any]) -> list[str]:
    """The words a product can be found by (title and attribute values)."""
    return fold(" ".join([product["title"], *product["attrs"].values()]))


def naive_search(products: list[dict[str, Any]], q: str) -> list[str]:
    """Ids with every search word (or its singular) starting one of their words."""
    joined = re.sub(r"(?<=[^\W_])['’-](?=[^\W_])", "", q)  # "t-shirt" -> "tshirt"
    wanted = fold(joined)
    return [p["id"] for p in products
            if all(any(w.startswith(x) or w.startswith(singular(x)) for w in words_of(p))
                   for x in wanted)]


def all_ids(shop: Shop, query: CatalogQuery) -> list[str]:
    total, _, _ = shop.matching(query, 1)
    _, _, items = shop.matching(CatalogQuery(query.q, query.filters, query.sort, 1),
                                max(total, 1))
    return [item.id for item in items]


def test_fake_folder_is_schema_valid(fake_folder: Path) -> None:
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
    assert (fake_folder / "shop.sqlite").is_file()  # the writer indexes every folder


def test_shop_reads_products_and_neighbours(shop: Shop, fake_folder: Path) -> None:
    pre = read_precomputed(fake_folder)
    assert shop.n_products == 120
    first = shop.item("p000")
    assert first is not None and first.title == HTML_TITLE
    assert first.thumb_url == "/thumbs/p000.jpg" and first.href == "/product/p000"
    assert shop.metric == "cosine"
    for pid in ("p000", "p057", "p119"):
        item, neighbours = shop.neighbours(pid)  # type: ignore[misc]
        assert item.id == pid
        assert [[n.id, s] for n, s in neighbours] == pre.neighbours[pid]
    assert shop.item("nope") is None and shop.neighbours("nope") is None


def test_facets_come_from_the_data(shop: Shop) -> None:
    names = [f.name for f in shop.facets]
    assert names == ["gender", "articleType", "baseColour"]
    gender = shop.facets[0]
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
    # products.json changed after the build: the shop notices and re-derives its index
    assert [f.name for f in Shop(folder).facets] == ["gender"]


def test_attribute_label() -> None:
    assert attribute_label("baseColour") == "Base colour"
    assert attribute_label("articleType") == "Article type"
    assert attribute_label("sub_category") == "Sub category"
    assert attribute_label("SKU") == "SKU"


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [
        (12.5, "EUR", "€12.50"),
        (1234, "USD", "$1,234.00"),
        (9.99, "SEK", "9.99 SEK"),
        (3, None, "3.00"),
        (None, "EUR", ""),
        ("n/a", "EUR", ""),
        (float("nan"), "EUR", ""),
    ],
)
def test_format_price(price: object, currency: object, expected: str) -> None:
    assert format_price(price, currency) == expected


@pytest.mark.parametrize("q", ["RED  jeans", "red", "e", "shirts", "tshirt", "<b>bold</b>",
                               "1", "zzz", "men", 'x")', "Clas", "bold tee", "réd", "a*b OR c"])
def test_search_matches_the_start_of_words_in_title_or_attributes(
    shop: Shop, products: list[dict[str, Any]], q: str
) -> None:
    expected = naive_search(products, q)
    found = all_ids(shop, CatalogQuery(q=q))
    if not re.findall(r"[^\W_]+", q):
        assert len(found) == 120  # nothing to search for: everything
    else:
        assert sorted(found) == expected, q


def shop_with_titles(tmp_path: Path, titles: list[str], colours: list[str]) -> Shop:
    """A small shop whose products have these titles and colours (ids p0, p1, ...)."""
    folder = make_fake_precomputed(tmp_path / "titled", len(titles), k=1,
                                   attrs={"colour": sorted(set(colours))}, thumbs=False)
    products = json.loads((folder / "products.json").read_text())
    for p, title, colour in zip(products, titles, colours, strict=True):
        p["title"], p["attrs"] = title, {"colour": colour}
    (folder / "products.json").write_text(json.dumps(products))
    return Shop(folder)  # products.json changed: the index is derived again


def found(shop: Shop, q: str) -> list[str]:
    return [item.title for item in shop.matching(CatalogQuery(q=q), 50)[2]]


def test_search_finds_what_people_type(tmp_path: Path) -> None:
    shop = shop_with_titles(tmp_path, [
        "Red T-shirt", "Women's Watch", "Running Sneakers", "Red Topwear Set", "Red Top",
        "Blue Shirt", "Summer Dresses", "Café Mug",
    ], ["Red", "Silver", "White", "Red", "Red", "Red", "Blue", "White"])
    for q in ("t-shirt", "tshirt", "t shirt", "T-Shirts", "tshirts"):
        assert "Red T-shirt" in found(shop, q), q
    assert found(shop, "sneakers") == found(shop, "sneaker") == ["Running Sneakers"]
    assert found(shop, "womens watch") == ["Women's Watch"]
    assert found(shop, "women's") == ["Women's Watch"]
    assert found(shop, "dress") == found(shop, "dresses") == ["Summer Dresses"]
    assert found(shop, "cafe") == ["Café Mug"]
    # "red" is only the Blue Shirt's colour: it matches, after the titles with both words
    assert found(shop, "red shirts") == found(shop, "red shirt") == ["Red T-shirt", "Blue Shirt"]


def test_search_ranks_by_relevance(tmp_path: Path) -> None:
    shop = shop_with_titles(tmp_path, [
        "A Red Topwear Set", "B Red Top", "C Blue Top", "D Red Tops",
    ], ["Red", "Red", "Red", "Red"])
    # whole words in the title first (B, D: "tops" -> "top"), then prefixes in the
    # title (A: "topwear"), then words only in the attributes (C: red is its colour)
    assert found(shop, "red top") == ["B Red Top", "D Red Tops", "A Red Topwear Set",
                                      "C Blue Top"]
    total, _, _ = shop.matching(CatalogQuery(q="red top"), 1)
    pages = [shop.matching(CatalogQuery(q="red top", page=n), 1)[2][0].title
             for n in range(1, total + 1)]
    assert pages == found(shop, "red top")  # tiers continue across pages


def test_filters_or_within_and_across_attributes(
    shop: Shop, products: list[dict[str, Any]]
) -> None:
    query = CatalogQuery(filters=(("gender", ("Men", "Women")), ("baseColour", ("Blue",))))
    expected = [p["id"] for p in products
                if p["attrs"]["gender"] in ("Men", "Women") and p["attrs"]["baseColour"] == "Blue"]
    assert all_ids(shop, query) == expected


def test_sort_by_price_puts_unknown_prices_last(shop: Shop) -> None:
    total, _, items = shop.matching(CatalogQuery(sort="price-asc"), 200)
    prices = [item.price for item in items]
    known = [p for p in prices if p is not None]
    assert len(items) == total == 120
    assert known == sorted(known)
    assert prices[len(known):] == [None] * (len(prices) - len(known))
    _, _, items = shop.matching(CatalogQuery(sort="price-desc"), 200)
    known = [item.price for item in items if item.price is not None]
    assert known == sorted(known, reverse=True)
    _, _, items = shop.matching(CatalogQuery(sort="title"), 200)
    titles = [item.title.casefold() for item in items]
    assert titles == sorted(titles)


def test_query_string_round_trip(shop: Shop) -> None:
    query = parse_catalog_query(
        "?q=red+shirt&baseColour=Red&gender=Men&gender=Women&sort=price-asc&page=2",
        shop.filter_choices,
    )
    assert query == CatalogQuery(
        q="red shirt", filters=(("gender", ("Men", "Women")), ("baseColour", ("Red",))),
        sort="price-asc", page=2,
    )
    assert parse_catalog_query(catalog_query_string(query), shop.filter_choices) == query
    assert catalog_query_string(CatalogQuery()) == ""


def test_query_string_ignores_junk(shop: Shop) -> None:
    query = parse_catalog_query("?page=-3&sort=evil&nosuch=1&gender=Nobody&gender=Men&gender=Men",
                                shop.filter_choices)
    assert query.page == 1 and query.sort == "featured"
    assert query.filters == (("gender", ("Men",)),)  # unknown values and repeats dropped


def test_catalog_results_paginate(shop: Shop) -> None:
    body, n_pages, page, count = catalog_results(shop, CatalogQuery(page=99))
    assert n_pages == 5  # 120 products, 24 per page
    assert page == 5  # clamped to the last page
    assert count == "120 products · showing 97–120"
    cards = body["props"]["children"]  # a grid in Dash's wire format
    assert len(cards) == 24
    card, find_similar = cards[-1]["props"]["children"]["props"]["children"]
    assert card["props"]["href"] == "/product/p119"
    assert find_similar["props"]["href"] == "/product/p119#similar-products"


def test_catalog_results_empty(shop: Shop) -> None:
    body, n_pages, page, count = catalog_results(shop, CatalogQuery(q="no-such-product"))
    assert (n_pages, page, count) == (1, 1, "0 products")
    assert "No products match" in str(body.to_plotly_json())


def page_links(links: Any) -> list[tuple[str, str | None]]:
    """(label, href or None) of each entry of the catalog's pagination."""
    entries = links["props"]["children"]["props"]["children"]
    out = []
    for li in entries:
        inner = li["props"]["children"]
        label = inner["props"]["children"]
        if isinstance(label, list):  # a symbol and its visually hidden name
            label = label[0]["props"]["children"]
        out.append((label, inner["props"].get("href")))
    return out


def test_sync_catalog_control_change_resets_page_and_sets_url(shop: Shop) -> None:
    out = sync_catalog(shop, "control", "?page=3", "blue", "featured", {"gender": ["Men"]})
    _, _, links, q, sort, filter_values, new_search, _ = out
    assert (q, sort) == ("blue", "featured")
    assert filter_values == [["Men"], [], []]
    assert new_search == "?q=blue&gender=Men"
    assert links is None  # one page of blue men's products: no page links
    out = sync_catalog(shop, "control", "?page=3", "", "featured", {"gender": ["Men"]})
    assert ("1", None) in page_links(out[2]) and out[6] == "?gender=Men"  # back on page 1


def test_page_links_are_real_addresses(shop: Shop) -> None:
    out = sync_catalog(shop, "url", "?sort=title&page=3", "", "featured", {})
    links = page_links(out[2])  # 120 products: 5 pages
    assert links[0] == ("«", "/?sort=title")  # page 1 has no page parameter
    assert links[1] == ("‹", "/?sort=title&page=2")
    assert ("3", None) in links  # the current page is not a link
    assert ("1", "/?sort=title") in links and ("5", "/?sort=title&page=5") in links
    assert links[-2:] == [("›", "/?sort=title&page=4"), ("»", "/?sort=title&page=5")]
    one_page = sync_catalog(shop, "url", "?q=no-such-product", "", "featured", {})
    assert one_page[2] is None


def test_sync_catalog_url_change_drives_controls(shop: Shop) -> None:
    out = sync_catalog(shop, "url", "?q=red&baseColour=Red", "stale", "price-asc",
                       {"gender": ["Men"]})
    _, _, _, q, sort, filter_values, new_search, _ = out
    assert (q, sort) == ("red", "featured")
    assert filter_values == [[], [], ["Red"]]
    assert new_search is no_update


def brute_counts(shop: Shop, query: CatalogQuery, facet: str) -> dict[str, int]:
    """A facet's counts the slow way: the results of the search and the other filters."""
    others = tuple(f for f in query.filters if f[0] != facet)
    total, _, _ = shop.matching(replace(query, filters=others, page=1), 1)
    items = shop.matching(replace(query, filters=others, page=1), max(total, 1))[2]
    found: dict[str, int] = {}
    for item in items:
        value = item.attrs.get(facet)
        if value:
            found[value] = found.get(value, 0) + 1
    return found


@pytest.mark.parametrize("query", [
    CatalogQuery(),
    CatalogQuery(q="red"),
    CatalogQuery(filters=(("gender", ("Men",)),)),
    CatalogQuery(q="classic", filters=(("gender", ("Men", "Women")), ("baseColour", ("Red",)))),
    CatalogQuery(q="no-such-word"),
], ids=["all", "search", "one-filter", "search-and-two-filters", "nothing"])
def test_filter_counts_follow_the_current_results(shop: Shop, query: CatalogQuery) -> None:
    counts = shop.facet_counts(query)
    assert set(counts) == {f.name for f in shop.facets}
    for facet in shop.facets:
        want = brute_counts(shop, query, facet.name)
        assert {v: n for v, n in counts[facet.name].items() if n} == want, facet.name
    # in the page: labels carry the counts; values that would give nothing are disabled
    out = sync_catalog(shop, "url", catalog_query_string(query), "", "featured", {})
    for facet, options in zip(shop.facets, out[7], strict=True):
        for option in options:
            n = counts[facet.name][option["value"]]
            assert option["label"] == f"{option['value']} ({n:,})"
            assert option["disabled"] == (n == 0 and option["value"]
                                          not in query.filter_values(facet.name))


def test_match_labels_come_from_the_row_calibration() -> None:
    quantiles = [i / 100 for i in range(101)]  # scores 0..1, uniformly spread
    assert match_label(0.95, quantiles) == ("Very close match", False)
    assert match_label(0.5, quantiles) == ("Close match", False)
    assert match_label(0.1, quantiles) == ("Loose match", True)
    # distances: small is close
    assert match_label(0.05, quantiles, "euclidean") == ("Very close match", False)
    # no calibration (a version-1 folder): no label at all, never a raw number
    assert match_label(0.99, []) is None and match_label(float("nan"), quantiles) is None


def test_clicked_product_path(shop: Shop) -> None:
    click = {"points": [{"customdata": "p005", "x": 1, "y": 2}]}
    assert clicked_product_path(click, shop) == "/product/p005"
    assert clicked_product_path({"points": [{"customdata": "nope"}]}, shop) is None
    assert clicked_product_path({"points": [{"customdata": ["p005"]}]}, shop) is None
    assert clicked_product_path(None, shop) is None
    assert clicked_product_path({"points": []}, shop) is None


def test_missing_folder_raises_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PrecomputedError) as err:
        Shop(tmp_path / "nothing-here")
    assert "nothing-here" in str(err.value) and "\n" not in str(err.value)


def test_folder_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(entry.ENV_VAR, raising=False)
    assert entry.precomputed_folder() == entry.DEFAULT_FOLDER
    monkeypatch.setenv(entry.ENV_VAR, "/somewhere/else")
    assert entry.precomputed_folder() == Path("/somewhere/else")
    assert entry.precomputed_folder("cli/wins") == Path("cli/wins")


def test_a_folder_can_ship_only_meta_and_its_index(tmp_path: Path) -> None:
    folder = make_fake_precomputed(tmp_path / "slim", 30, k=3)
    for name in ("products.json", "neighbours.json", "embeddings.npy"):
        (folder / name).unlink(missing_ok=True)
    shop = Shop(folder)
    assert shop.n_products == 30 and shop.neighbours("p01") is not None
    meta = json.loads((folder / "meta.json").read_text())
    meta["k"] = 99  # a meta.json the index was not built with: refused in one line
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(PrecomputedError, match=r"missing products\.json"):
        Shop(folder)


def test_index_of_an_old_read_only_folder_goes_to_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_fake_precomputed(tmp_path / "old", 20, k=3)
    (folder / "shop.sqlite").unlink()  # written before the index existed
    monkeypatch.setattr("shopfront.shop.os.access", lambda path, mode: False)  # read-only
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    shop = Shop(folder)
    assert shop.n_products == 20
    # in this user's private directory there (tests/test_hostile_data.py checks it)
    assert shop.index_path.parent.parent == tmp_path and not (folder / "shop.sqlite").exists()
    assert Shop(folder).index_path == shop.index_path  # derived once, then reused


def test_chosen_filters_show_as_removable_chips(shop: Shop) -> None:
    out = sync_catalog(shop, "url", "?q=red&gender=Men&gender=Women&baseColour=Red&sort=title",
                       "", "featured", {})
    chips = out[0][0]  # above the grid
    links = [(c["props"]["children"], c["props"]["href"]) for c in chips["props"]["children"]]
    texts = [label[0] if isinstance(label, list) else label for label, _ in links]
    assert texts == ["Gender: Men ", "Gender: Women ", "Base colour: Red ", "Clear all"]
    hrefs = [href for _, href in links]
    assert hrefs[0] == "/?q=red&gender=Women&baseColour=Red&sort=title"
    assert hrefs[2] == "/?q=red&gender=Men&gender=Women&sort=title"
    assert hrefs[3] == "/?q=red&sort=title"  # clear all keeps the search and the sort
    assert not isinstance(sync_catalog(shop, "url", "?q=red", "", "featured", {})[0], list)


def test_many_valued_attributes_stay_filters(tmp_path: Path) -> None:
    kinds = [f"Kind {i:03d}" for i in range(98)]  # like articleType in the fashion data
    folder = make_fake_precomputed(tmp_path / "kinds", 400, k=2,
                                   attrs={"articleType": kinds, "gender": ["Men", "Women"]})
    assert [f.name for f in Shop(folder).facets] == ["articleType", "gender"]
