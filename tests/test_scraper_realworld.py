"""Pages and values written by others (issue 11, item 10): price strings as real shops
write them, srcset values from image CDNs and the HTML spec's own edge cases, product
pages marked up with microdata, RDFa or OpenGraph only, and ids from real shop URLs."""

from __future__ import annotations

import pytest

from pipeline.catalog import make_id
from scraper.money import currency_code, parse_price
from scraper.parse import catalog_id, parse_product_page, slug_from_url
from scraper.profile import parse_profile
from scraper.srcset import parse_srcset, pick_srcset

PROFILE = parse_profile({"start_urls": ["https://shop.example/"],
                         "product_page": {"fetch": True}}, "p.toml")

# (text as a shop shows it, amount, ISO code); the kinds price-parser's own suite and
# real shop pages carry, including every case the old parser got wrong
PRICES = [
    ("€1.299,00", "1299.00", "EUR"), ("$1,234.50", "1234.50", "USD"),
    (".75 €", "0.75", "EUR"), ("$.75", "0.75", "USD"), ("35€ 99", "35.99", "EUR"),
    ("40% OFF", None, None), ("3 Ausgaben für nur 14,85 EUR", "14.85", "EUR"),
    ("€6.56 + VAT", "6.56", "EUR"), ("4,35 € TTC", "4.35", "EUR"),
    ("148.50 Inc GST", "148.50", None), ("R$ 1.299,90", "1299.90", "BRL"),
    ("C$ 12.99", "12.99", "CAD"), ("A$ 20", "20", "AUD"), ("NT$ 1,200", "1200", "TWD"),
    ("MX$ 150", "150", "MXN"), ("HK$ 99", "99", "HKD"), ("1 234,56 Kč", "1234.56", "CZK"),
    ("299 руб.", "299", "RUB"), ("1 990 ₽", "1990", "RUB"), ("12,99 lei", "12.99", "RON"),
    ("1 500 грн", "1500", "UAH"), ("25,90 лв.", "25.90", "BGN"), ("Rp 150.000", "150000", "IDR"),
    ("150.000₫", "150000", "VND"), ("₪ 99.90", "99.90", "ILS"), ("2 500 Ft", "2500", "HUF"),
    ("149,90 TL", "149.90", "TRY"), ("12,000원", "12000", "KRW"), ("1,200円", "1200", "JPY"),
    ("¥1,200", "1200", "JPY"), ("zł 49,99", "49.99", "PLN"), ("199 kr", "199", "SEK"),
    ("Fr. 12.50", "12.50", "CHF"), ("CHF 1'299.00", "1299.00", "CHF"), ("£7", "7", "GBP"),
    ("₹ 2,499", "2499", "INR"), ("US$ 5", "5", "USD"), ("Sale: $19.99", "19.99", "USD"),
    ("from £12 to £20", "12", "GBP"), ("1 299,95 SEK", "1299.95", "SEK"),
    ("Free!", "0", None), ("Call for price", None, None),
]


@pytest.mark.parametrize(("text", "amount", "code"), PRICES)
def test_real_world_prices(text: str, amount: str | None, code: str | None) -> None:
    assert parse_price(text) == (amount, code)


def test_currency_hints_and_structured_decimals() -> None:
    assert parse_price("$12", "CAD") == ("12", "CAD")  # the hint picks which dollar
    assert parse_price("€12", "USD") == ("12", "EUR")  # ... but never overrides a clear sign
    assert parse_price("12,50", "EUR") == ("12.50", "EUR")  # a bare number takes the hint
    assert parse_price("12.500", "KWD", structured=True) == ("12.500", "KWD")
    assert parse_price("12.500") == ("12500", None)  # as a person reads a page
    assert parse_price("kr 99", "NOK") == ("99", "NOK")
    assert currency_code("€") == currency_code("eur") == "EUR"
    assert currency_code("VAT") is None and currency_code("TTC") is None


# srcset: the HTML spec's parsing (web-platform-tests' cases) and real CDN values
SRCSET = [
    ("a.jpg 100w, b.jpg 300w, c.jpg 200w", "b.jpg"),
    ("a.jpg, b.jpg 2x", "b.jpg"),
    ("https://res.cloudinary.com/demo/image/upload/f_auto,c_pad,w_500/v1/shoe.jpg 500w, "
     "https://res.cloudinary.com/demo/image/upload/f_auto,c_pad,w_1000/v1/shoe.jpg 1000w",
     "https://res.cloudinary.com/demo/image/upload/f_auto,c_pad,w_1000/v1/shoe.jpg"),
    ("https://m.media-amazon.com/images/I/71x._AC_SR139,139_.jpg 1x, "
     "https://m.media-amazon.com/images/I/71x._AC_SR278,278_.jpg 2x",
     "https://m.media-amazon.com/images/I/71x._AC_SR278,278_.jpg"),
    ("//cdn.shopify.com/s/files/1/x_360x.jpg?v=1 360w,//cdn.shopify.com/s/files/1/x_720x.jpg"
     "?v=1 720w", "//cdn.shopify.com/s/files/1/x_720x.jpg?v=1"),
    ("https://img.example/x.jpg?w=400&fit=crop,top 400w", "https://img.example/x.jpg?w=400&fit=crop,top"),
    ("data:,a 1x", "data:,a"),
    ("data:,a ( , data:,b 1x, ), data:,c", "data:,c"),  # a bad descriptor drops its URL
    ("data:,a 0w, data:,b 1w", "data:,b"),
    ("data:,a -1x, data:,b 1x", "data:,b"),
    ("data:,a 1x 2x", None),
    ("data:,a 10h", None),
    ("data:,a 10w 20h", "data:,a"),
    (",,,,", None),
    ("", None),
]


@pytest.mark.parametrize(("srcset", "best"), SRCSET)
def test_srcset_as_the_html_spec_parses_it(srcset: str, best: str | None) -> None:
    assert pick_srcset(srcset) == best


def test_srcset_candidates_keep_commas_inside_urls() -> None:
    cands = parse_srcset("a,b.jpg 1x, c.jpg,")
    assert [c.url for c in cands] == ["a,b.jpg", "c.jpg"]


# product pages as older shop platforms write them -------------------------------------

MICRODATA = """<html><head>
<meta property="og:type" content="website"><meta property="og:site_name" content="FYE">
<meta property="og:image" content="https://fye.example/share-logo.png">
<meta property="og:title" content="Vinyl Record | FYE"></head><body>
<div itemscope itemtype="https://schema.org/Product">
  <h1 itemprop="name">Vinyl Record</h1>
  <img itemprop="image" src="/media/vinyl-large.jpg">
  <span itemprop="sku">FYE-12345</span>
  <div itemprop="offers" itemscope itemtype="https://schema.org/Offer">
    <span itemprop="priceCurrency" content="USD">$</span>
    <span itemprop="price" content="24.98">24.98</span>
  </div>
</div>
<div itemscope itemtype="https://schema.org/Product"><span itemprop="name">Related</span>
  <img itemprop="image" src="/media/related.jpg"></div>
</body></html>"""


def test_microdata_product_page_with_a_site_wide_share_logo() -> None:
    rec = parse_product_page(MICRODATA, "https://fye.example/p/vinyl", PROFILE)
    assert rec.title == "Vinyl Record"
    assert rec.image_url == "https://fye.example/media/vinyl-large.jpg"  # not the logo
    assert (rec.price, rec.currency, rec.shop_id) == ("24.98", "USD", "FYE-12345")
    assert catalog_id(rec) == "FYE-12345"


def test_rdfa_product_page() -> None:
    html = """<html><body vocab="https://schema.org/">
    <div typeof="Product"><span property="name">Walnut Desk</span>
      <img property="image" src="/i/desk.jpg"><span property="sku">D-9</span>
      <div property="offers" typeof="Offer"><span property="price">1299.00</span>
        <meta property="priceCurrency" content="EUR"></div></div></body></html>"""
    rec = parse_product_page(html, "https://shop.example/desk", PROFILE)
    assert (rec.title, rec.shop_id, rec.price, rec.currency) == ("Walnut Desk", "D-9",
                                                                 "1299.00", "EUR")
    assert rec.image_url == "https://shop.example/i/desk.jpg"


def test_opengraph_sale_price_and_title_without_site_name() -> None:
    html = """<head><meta property="og:type" content="product">
    <meta property="og:title" content="Linen Shirt – Acme Store">
    <meta property="og:site_name" content="Acme Store">
    <meta property="og:image" content="/shirt.jpg">
    <meta property="product:price:amount" content="59.00">
    <meta property="product:price:currency" content="GBP">
    <meta property="product:sale_price:amount" content="39.00">
    <meta property="product:sale_price:currency" content="GBP">
    <script type="application/ld+json">{"@type": "Product", "name": "Linen Shirt",
     "offers": {"@type": "Offer", "price": "59.00", "priceCurrency": "GBP"}}</script></head>"""
    rec = parse_product_page(html, "https://acme.example/shirt", PROFILE)
    assert (rec.price, rec.currency) == ("39.00", "GBP")  # the sale price OpenGraph states
    assert rec.title == "Linen Shirt"
    og_only = parse_product_page(html.split("<script")[0], "https://acme.example/s", PROFILE)
    assert og_only.title == "Linen Shirt"  # the site's name is not part of the title
    assert og_only.image_url == "https://acme.example/shirt.jpg"


def test_json_ld_sale_price_specification_and_decimals() -> None:
    html = """<script type="application/ld+json">{"@context": "https://schema.org",
     "@type": "Product", "name": "Oud", "sku": "K-1", "image": "/oud.jpg",
     "offers": {"@type": "Offer", "price": "12.500", "priceCurrency": "KWD",
       "priceSpecification": [
         {"@type": "UnitPriceSpecification", "priceType": "https://schema.org/ListPrice",
          "price": "15.000", "priceCurrency": "KWD"},
         {"@type": "UnitPriceSpecification", "priceType": "https://schema.org/SalePrice",
          "price": "12.500", "priceCurrency": "KWD"}]}}</script>
    <script type="application/ld+json">{ broken, </script>"""
    rec = parse_product_page(html, "https://k.example/oud", PROFILE)
    assert (rec.price, rec.currency) == ("12.500", "KWD")  # 12.5 dinars, not 12,500


def test_a_profile_currency_selector_is_stored_as_an_iso_code() -> None:
    prof = parse_profile({"start_urls": ["https://s.example/"],
                          "product_page": {"price": ".amount", "currency": ".cur"}}, "p.toml")
    rec = parse_product_page('<span class="cur">€</span><span class="amount">12,90</span>',
                             "https://s.example/p/1", prof)
    assert (rec.price, rec.currency) == ("12.90", "EUR")


# ids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "slug"), [
    ("https://www.amazon.com/Some-Shoe/dp/B07XJ8C8F5/ref=sr_1_1?keywords=shoe&qid=1",
     "B07XJ8C8F5"),
    ("https://www.amazon.com/Other-Shoe/dp/B07ZZZZZZZ/ref=sr_1_1", "B07ZZZZZZZ"),
    ("https://www.amazon.com/gp/product/B00ABC1234/", "B00ABC1234"),
    ("https://shop.example/product.php?id=42&utm_source=mail", "product-42"),
    ("https://shop.example/p/red-dress;jsessionid=ABC", "red-dress"),
    ("https://shop.example/items/red-dress.html?ref=list", "red-dress"),
])
def test_ids_from_real_shop_urls(url: str, slug: str) -> None:
    assert slug_from_url(url) == slug


def test_ids_stay_distinct() -> None:
    assert make_id("über-商品") != make_id("über-品")
    assert make_id("über-商品").startswith("uber-")
    assert make_id("Crème brûlée") == "Creme-brulee"
    assert make_id("商品") and make_id("商品") != make_id("品")
    long_a, long_b = make_id("x" * 200 + "a"), make_id("x" * 200 + "b")
    assert long_a != long_b and len(long_a) <= 120 and len(long_b) <= 120
    assert make_id(".") is None and make_id("..") is None and make_id(" / ") is None
    assert make_id("Straße") == "Strasse"
