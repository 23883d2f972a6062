"""JavaScript-rendered shops and JSON feeds end to end against the demo shop (issue 11,
items 1-2): headless system Chromium for the infinite-scroll grid, a Shopify-style feed."""

from __future__ import annotations

import csv
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from scraper import ScraperError
from scraper.crawl import crawl
from scraper.demo_shop.server import start_server
from scraper.profile import BrowserSpec, load_profile, parse_profile


def rows(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "catalog.csv").open(encoding="utf-8", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def shop():
    server = start_server()
    yield server
    server.shutdown()
    server.server_close()


def test_json_feed_is_read_page_by_page_until_an_empty_page(shop, tmp_path) -> None:
    prof = load_profile("demo-feed", base_url=shop.base_url)
    prof = replace(prof, feed=replace(prof.feed, url=prof.feed.url.replace("limit=50",
                                                                            "limit=40")))
    shop.reset()
    summary = crawl(prof, tmp_path / "feed", progress=False)
    got = rows(tmp_path / "feed")
    assert summary.done == len(shop.products) == len(got)
    pages = [r.path for r in shop.request_log if r.path.startswith("/products.json")]
    assert len(pages) == 5  # 4 pages of 40, then the empty one that ends the feed
    assert not summary.page_problems  # the empty last page is the end, not a problem
    p = shop.products[0]
    row = got[p.sku]
    assert (row["title"], row["price"], row["currency"]) == (p.title, p.price, "EUR")
    assert row["product_url"] == f"{shop.base_url}/product/{p.slug}.html"
    assert row["image_url"] == f"{shop.base_url}/img/{p.image_sku}-512.jpg"
    assert row["category"] == p.category and row["vendor"] == "Lookalike"
    # a re-run re-reads only the last (empty) page: new products would appear there
    shop.reset()
    again = crawl(prof, tmp_path / "feed", progress=False)
    assert again.new_products == 0
    assert [r.path for r in shop.request_log if r.path.startswith("/products")] == \
        [pages[-1]]


def test_feed_profile_errors_name_the_key() -> None:
    from scraper.profile import ProfileError

    with pytest.raises(ProfileError, match=r"feed\.price' is not a valid JMESPath"):
        parse_profile({"feed": {"url": "https://s.example/p.json?page={page}",
                                "price": "variants[0.price"}}, "p.toml")
    with pytest.raises(ProfileError, match=r"unknown key 'feed\.titel'"):
        parse_profile({"feed": {"url": "https://s.example/p.json", "titel": "t"}}, "p.toml")


def test_feed_with_next_link_field_and_sale_price(tmp_path) -> None:
    from scraper.parse import parse_feed

    prof = parse_profile({"feed": {
        "url": "https://s.example/api/items", "items": "data.items", "id": "code",
        "title": "name", "price": "price.regular", "sale_price": "price.sale",
        "currency": "price.currency", "link": "url", "image": "media[0].url",
        "next": "links.next"}}, "p.toml")
    body = ('{"data": {"items": [{"code": "X-1", "name": " Red  bag ", "url": "/p/x-1",'
            ' "media": [{"url": "//cdn.s.example/x.jpg"}], "price": {"regular": "12.500",'
            ' "sale": 9.5, "currency": "KWD"}}]}, "links": {"next": "/api/items?c=abc"}}')
    page = parse_feed(body, "https://s.example/api/items", prof)
    (rec,) = page.products
    assert (rec.shop_id, rec.title, rec.price, rec.currency) == ("X-1", "Red bag", "9.5", "KWD")
    assert rec.image_url == "https://cdn.s.example/x.jpg"
    assert page.next_url == "https://s.example/api/items?c=abc"


@pytest.mark.browser
def test_javascript_shop_is_crawled_in_a_browser_with_infinite_scroll(shop, tmp_path) -> None:
    prof = load_profile("demo-js", base_url=shop.base_url)
    prof = replace(prof, start_urls=(f"{shop.base_url}/js/shop.html?category=hats&per_page=5",))
    shop.reset()
    summary = crawl(prof, tmp_path / "js", progress=False)
    hats = [p for p in shop.products if p.category == "hats"]
    got = rows(tmp_path / "js")
    assert set(got) == {p.sku for p in hats} and summary.done == len(hats)  # 17 = 4 batches
    api = [r for r in shop.request_log if r.path.startswith("/api/products.json")]
    assert len(api) >= 4  # the grid was scrolled until no new cards appeared
    page = next(r for r in shop.request_log if r.path.startswith("/js/shop.html"))
    assert "lookalike-scraper" in page.user_agent and "demo@localhost" in page.user_agent
    assert shop.request_log[0].path == "/robots.txt"
    # the browser loads no images: every image request came from the polite session
    images = [r for r in shop.request_log if r.path.startswith("/img/")]
    assert len(images) == len(hats) and all("lookalike-scraper" in r.user_agent
                                            for r in images)
    assert (got[hats[0].sku]["price"], got[hats[0].sku]["currency"]) == (hats[0].price, "EUR")
    # the scrolls were paced by the host's delay
    arrivals = [r.at for r in api]
    assert all(b - a >= prof.politeness.delay for a, b in pairwise(arrivals))


@pytest.mark.browser
def test_browser_navigation_obeys_robots_txt(shop, tmp_path) -> None:
    prof = load_profile("demo-js", base_url=shop.base_url)
    prof = replace(prof, start_urls=(f"{shop.base_url}/members/list.html",))
    summary = crawl(prof, tmp_path / "js", progress=False)
    assert summary.page_problems and "disallowed by robots.txt" in summary.page_problems[0][1]


def test_missing_browser_binary_is_a_one_line_error(monkeypatch) -> None:
    from scraper.browser import find_binaries

    with pytest.raises(ScraperError, match="apt-get install chromium"):
        find_binaries(BrowserSpec(chromium="/nonexistent/chromium"))
    with pytest.raises(ScraperError, match="chromium-driver"):
        find_binaries(BrowserSpec(chromium="/bin/sh", chromedriver="/nonexistent/driver"))
