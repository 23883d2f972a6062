"""Pure parsing and profile validation against saved HTML (no network)."""

from __future__ import annotations

import pytest

from scraper.parse import (
    catalog_id,
    make_id,
    parse_listing,
    parse_price,
    parse_product_page,
    pick_srcset,
    resolve_url,
    slug_from_url,
)
from scraper.profile import ProfileError, bundled_profile, load_profile, parse_profile

PAGE = "https://shop.example/women/dresses/page-2.html"

LISTING = """
<html><body><ul>
 <li class="card" data-pid="A 1/x">
   <a class="go" href="../items/red-dress.html?ref=list#top"><img class="pic"
      src="/static/blank.gif" data-src="//cdn.example/img/red-400.jpg" alt="Red dress"></a>
   <h3> Red   dress </h3><span class="price">€1.299,00</span>
   <span class="colour">Red</span>
 </li>
 <li class="card" data-pid="B2">
   <a class="go" href="https://shop.example/items/blue.html"><img class="pic"
      srcset="img/blue-200.jpg 200w, img/blue-800.jpg 800w, img/blue-400.jpg 400w"></a>
   <h3>Blue dress</h3><span class="price">$12.50</span>
 </li>
 <li class="card"><h3>No link, no image</h3></li>
</ul><a class="next" href="page-3.html">next</a></body></html>
"""

PRODUCT = """
<html><head>
<meta property="og:title" content="OG title">
<meta property="og:image" content="/og/full.jpg">
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
  {"@type": "BreadcrumbList"},
  {"@type": ["Product"], "name": "Red dress (JSON-LD)", "sku": "SKU-77",
   "image": [{"@type": "ImageObject", "url": "https://cdn.example/full/red.jpg"}],
   "offers": [{"@type": "Offer", "price": 49.9, "priceCurrency": "EUR"}]}]}</script>
<script type="application/ld+json">{ not json </script>
</head><body><dd class="material">Cotton</dd></body></html>
"""


def _profile(**extra) -> object:
    data = {"start_urls": [PAGE], "pagination": {"next": "a.next"},
            "listing": {"card": "li.card", "id": {"attr": "data-pid"}, "title": "h3",
                        "price": ".price", "link": "a.go",
                        "image": {"selector": "img.pic", "attr": ["data-src", "srcset", "src"]},
                        "attributes": {"colour": ".colour"}}}
    data.update(extra)
    return parse_profile(data, "test.toml")


def test_listing_cards_fields_and_next_link() -> None:
    page = parse_listing(LISTING, PAGE, _profile())
    assert page.next_url == "https://shop.example/women/dresses/page-3.html"
    assert len(page.products) == 2  # the card with neither link nor image is dropped
    red, blue = page.products
    assert red.product_url == "https://shop.example/women/items/red-dress.html?ref=list"
    assert red.image_url == "https://cdn.example/img/red-400.jpg"  # data-src, protocol-relative
    assert (red.title, red.price, red.currency) == ("Red dress", "1299.00", "EUR")
    assert red.attrs == {"colour": "Red"}
    assert red.shop_id == "A 1/x" and catalog_id(red) == "A-1-x"
    assert blue.image_url == "https://shop.example/women/dresses/img/blue-800.jpg"  # largest
    assert (blue.price, blue.currency) == ("12.50", "USD")


def test_listing_without_card_selector_uses_json_ld() -> None:
    html = """<script type="application/ld+json">{"@type": "ItemList", "itemListElement": [
      {"@type": "ListItem", "position": 1, "url": "/p/1"},
      {"@type": "ListItem", "position": 2, "item": {"@type": "Product", "name": "Two",
       "url": "/p/2", "image": "/i/2.jpg", "sku": "S2"}}]}</script>"""
    page = parse_listing(html, "https://s.example/list", parse_profile(
        {"start_urls": ["https://s.example/list"]}, "t.toml"))
    urls = [p.product_url for p in page.products]
    assert urls == ["https://s.example/p/1", "https://s.example/p/2"]
    assert page.products[1].image_url == "https://s.example/i/2.jpg"
    assert page.products[1].shop_id == "S2"


def test_product_page_falls_back_to_json_ld_then_opengraph() -> None:
    prof = _profile(product_page={"fetch": True, "attributes": {"material": "dd.material"}})
    rec = parse_product_page(PRODUCT, "https://shop.example/items/red-dress.html", prof)
    assert rec.title == "Red dress (JSON-LD)"  # JSON-LD beats OpenGraph
    assert rec.image_url == "https://cdn.example/full/red.jpg"
    assert (rec.price, rec.currency, rec.shop_id) == ("49.9", "EUR", "SKU-77")
    assert rec.attrs == {"material": "Cotton"}
    og_only = parse_product_page('<meta property="og:image" content="/og/x.jpg">'
                                 '<meta property="og:title" content="T">',
                                 "https://shop.example/items/x-1.html", prof)
    assert og_only.image_url == "https://shop.example/og/x.jpg" and og_only.title == "T"
    assert catalog_id(og_only) == "x-1"  # URL slug when the shop gives no id


@pytest.mark.parametrize(("srcset", "best"), [
    ("a.jpg 100w, b.jpg 300w, c.jpg 200w", "b.jpg"),
    ("a.jpg 1x, b.jpg 2x", "b.jpg"),
    ("only.jpg", "only.jpg"),
    ("https://c.example/i.jpg?w=1,2 480w, https://c.example/j.jpg 960w", "https://c.example/j.jpg"),
])
def test_pick_srcset(srcset: str, best: str) -> None:
    assert pick_srcset(srcset) == best


@pytest.mark.parametrize(("url", "expected"), [
    ("//cdn.example/a.jpg", "https://cdn.example/a.jpg"),
    ("../b.jpg", "https://shop.example/women/b.jpg"),
    ("/c.jpg#frag", "https://shop.example/c.jpg"),
    ("data:image/gif;base64,R0lG", None),
    ("javascript:void(0)", None),
    ("  ", None),
])
def test_resolve_url(url: str, expected: str | None) -> None:
    assert resolve_url(PAGE, url) == expected


@pytest.mark.parametrize(("text", "price", "currency"), [
    ("€1.299,00", "1299.00", "EUR"), ("$1,299.00", "1299.00", "USD"),
    ("12,50 €", "12.50", "EUR"), ("£7", "7", "GBP"), ("1 299,95 SEK", "1299.95", "SEK"),
    ("1,299", "1299", None), (19.9, "19.9", None), ("free", "0", None), ("n/a", None, None),
])
def test_parse_price(text: object, price: str | None, currency: str | None) -> None:
    assert parse_price(text) == (price, currency)


def test_ids_are_filesystem_safe_and_come_from_the_shop() -> None:
    assert make_id(" ab/cd:ef ") == "ab-cd-ef"
    assert make_id("..") is None and make_id("") is None
    assert slug_from_url("https://s.example/p/blue-shirt-42.html") == "blue-shirt-42"
    assert slug_from_url("https://s.example/product.php?id=981") == "product-981"


def test_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ProfileError, match=r"unknown key 'listing.titel'.*did you mean 'title'"):
        parse_profile({"start_urls": [PAGE], "listing": {"card": "li", "titel": "h3"}}, "p.toml")
    with pytest.raises(ProfileError, match=r"unknown key 'politeness\.delay_s'"):
        parse_profile({"start_urls": [PAGE], "politeness": {"delay_s": 1}}, "p.toml")


@pytest.mark.parametrize(("data", "message"), [
    ({"start_urls": [PAGE], "listing": {"card": "li[[bad"}}, "'listing.card' is not a valid CSS"),
    ({"start_urls": ["ftp://x/y"]}, "absolute http"),
    ({}, "set 'start_urls', 'pagination.url_template' or 'feed.url'"),
    ({"start_urls": ["{base}/x"]}, "no base_url"),
    ({"pagination": {"url_template": "https://s.example/?p=1"}}, "must contain {page}"),
    ({"start_urls": [PAGE], "politeness": {"delay": -1}}, "politeness.delay"),
    ({"start_urls": [PAGE], "listing": {"attributes": {"title": "h1"}}}, "attribute name"),
])
def test_bad_profiles_are_clear_errors(data: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("{", r"\{").replace("[", r"\[")):
        parse_profile(data, "p.toml")


def test_url_template_and_base_url() -> None:
    prof = parse_profile({"base_url": "http://127.0.0.1:1/",
                          "pagination": {"url_template": "{base}/list?page={page}",
                                         "pages": [2, 4]}}, "p.toml")
    assert prof.listing_urls() == [f"http://127.0.0.1:1/list?page={n}" for n in (2, 3, 4)]


def test_bundled_demo_profile_loads_with_base_url_override() -> None:
    assert bundled_profile("demo") is not None
    prof = load_profile("demo", base_url="http://127.0.0.1:5555")
    assert prof.start_urls == ("http://127.0.0.1:5555/shop/page/1.html",)
    assert prof.fetch_product_page and prof.politeness.contact
