"""What a shopper does, in headless Chromium through dash[testing]'s `dash_duo`.

Screenshots of the catalog and product pages go to $LOOKALIKE_SCREENSHOTS (default: the
test's tmp folder) for a human to look at.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException

from shopfront import create_app
from shopfront.pages.catalog import PAGE_SIZE
from shopfront.query import CatalogQuery
from tests.browser_wait import wait_for

pytestmark = pytest.mark.browser


def wait_text(dash_duo: Any, selector: str, predicate: Any, timeout: float = 10) -> str:
    """Wait until the element's text satisfies `predicate`; return the text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            elements = dash_duo.driver.find_elements_by_css_selector(selector)
            text = elements[0].text if elements else ""
        except StaleElementReferenceException:  # Dash re-rendered it between find and read
            elements, text = [], ""
        if elements and predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{selector}: text {text!r} never matched")


def wait_url(dash_duo: Any, predicate: Any, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = dash_duo.driver.current_url
        if predicate(url):
            return url
        time.sleep(0.1)
    raise AssertionError(f"URL {dash_duo.driver.current_url!r} never matched")


def screenshot(dash_duo: Any, folder: Path, name: str) -> Path:
    """A full-height PNG of the current page."""
    driver = dash_duo.driver
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 120, 800), 3000))
    time.sleep(0.3)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path


def wait_title(dash_duo: Any, predicate: Any, timeout: float = 10) -> str:
    """Wait until the document title satisfies `predicate`; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        title = dash_duo.driver.title
        if predicate(title):
            return title
        time.sleep(0.1)
    raise AssertionError(f"title {dash_duo.driver.title!r} never matched")


def console_errors(dash_duo: Any, not_found: tuple[str, ...] = ()) -> list[dict]:
    """The browser's console errors, less the 404 of each page URL in `not_found` (the
    server answers an unknown page with HTTP 404, which Chromium logs), and check that
    each of those was indeed answered with a 404."""
    logs = dash_duo.get_logs()
    expected = {f"{dash_duo.server_url.rstrip('/')}{path} - Failed to load resource: the "
                "server responded with a status of 404 (NOT FOUND)" for path in not_found}
    seen = {e["message"] for e in logs if e["source"] == "network"} & expected
    assert seen == expected, logs
    return [e for e in logs if e["message"] not in expected]


def push_path(dash_duo: Any, path: str) -> None:
    """Client-side navigation to `path`, as a dcc.Link click does (no page load)."""
    dash_duo.driver.execute_script(
        "window.history.pushState({}, '', arguments[0]);"
        "window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));", path)


def test_shopper_journey(dash_duo: Any, fake_folder: Path, shots: Path) -> None:
    front = create_app(fake_folder)
    shop = front.shop
    dash_duo.start_server(front.app)
    base = dash_duo.server_url.rstrip("/")

    # Catalog: a page of cards with thumbnails served by the app.
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith("120 products"))
    cards = dash_duo.find_elements("#catalog-grid .product-link")
    assert len(cards) == PAGE_SIZE
    dash_duo.wait_for_element("#catalog-grid img")
    loaded = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#catalog-grid img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length"
    )
    assert loaded > 0
    # Markup in a scraped title is shown as text, not interpreted.
    assert dash_duo.driver.find_elements_by_css_selector("#catalog-grid script") == []
    first_title = dash_duo.find_elements("#catalog-grid .product-title")[0].text
    assert first_title == shop.matching(CatalogQuery(), PAGE_SIZE)[2][0].title
    catalog_title = wait_title(dash_duo, lambda t: t.startswith("Shop the catalog"))
    screenshot(dash_duo, shots, "catalog")

    # Search: the grid, the count and the URL follow.
    n_red = shop.matching(CatalogQuery(q="red"), PAGE_SIZE)[0]
    dash_duo.find_element("#catalog-search").send_keys("red")
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith(f"{n_red} product"))
    wait_url(dash_duo, lambda u: "q=red" in u)
    wait_title(dash_duo, lambda t: t.startswith("“red” – search"))

    # Filter by an attribute built from the data; its counts follow the search.
    red_men = CatalogQuery(q="red", filters=(("gender", ("Men",)),))
    men = shop.facet_counts(CatalogQuery(q="red"))["gender"]["Men"]
    assert men < dict(shop.facet("gender").options)["Men"]  # type: ignore[union-attr]
    dash_duo.select_dcc_dropdown('[id*="catalog-filter"][id*="gender"]', value=f"Men ({men})")
    n_red_men = shop.matching(red_men, PAGE_SIZE)[0]
    assert n_red_men == men
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith(f"{n_red_men} product"))
    wait_url(dash_duo, lambda u: "gender=Men" in u)
    dash_duo.driver.find_element_by_tag_name("body").click()  # close the dropdown menu
    # the colour filter now counts red men's products only
    red = shop.facet_counts(red_men)["baseColour"]["Red"]
    colour = '[id*="catalog-filter"][id*="baseColour"]'
    dash_duo.find_element(colour).click()
    # the open menu's options (Dash draws them in a popover at the end of the page)
    wait_for(lambda: any(e.text.strip() == f"Red ({red})"
                         for e in dash_duo.find_elements("[role='option']")),
             what=f"the colour filter offering Red ({red})")
    dash_duo.driver.find_element_by_tag_name("body").click()

    # Open a product: its page, its similar products.
    target = dash_duo.find_elements("#catalog-grid .product-link")[0]
    target_id = target.get_attribute("href").rsplit("/", 1)[1]
    target.click()
    found = shop.neighbours(target_id)
    assert found is not None
    item, neighbours = found
    wait_text(dash_duo, "#product-title", lambda t: t == item.title)
    assert dash_duo.driver.current_url == f"{base}/product/{target_id}"
    # Client-side navigation gives each page its own <title>.
    product_title = wait_title(dash_duo, lambda t: item.title in t)
    assert product_title != catalog_title
    similar = dash_duo.find_elements("#similar-products .product-link")
    assert len(similar) == len(neighbours) == 8
    badges = [e.text for e in dash_duo.find_elements("#similar-products .match-text")]
    assert badges and all(b in ("Very close match", "Close match", "Loose match")
                          for b in badges), badges
    screenshot(dash_duo, shots, "product")

    # Click a similar product: its page.
    neighbour_id = similar[0].get_attribute("href").rsplit("/", 1)[1]
    similar[0].click()
    neighbour = shop.item(neighbour_id)
    assert neighbour is not None
    wait_text(dash_duo, "#product-title", lambda t: t == neighbour.title)
    wait_title(dash_duo, lambda t: neighbour.title in t)

    # Back button: the previous product, then the catalog as it was left.
    dash_duo.driver.back()
    wait_text(dash_duo, "#product-title", lambda t: t == item.title)
    dash_duo.driver.back()
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith(f"{n_red_men} product"))
    assert dash_duo.find_element("#catalog-search").get_attribute("value") == "red"
    wait_title(dash_duo, lambda t: t.startswith("“red” – search"))

    # Explore: the map, coloured by an attribute; a clicked point shows its product.
    dash_duo.find_element('.site-nav a[href="/explore"]').click()
    dash_duo.wait_for_element("#explore-graph .js-plotly-plot", timeout=15)
    legend = wait_text(dash_duo, "#explore-graph .legend", lambda t: "Men" in t)
    assert "Women" in legend
    points = dash_duo.driver.find_elements_by_css_selector("#explore-graph .scatterlayer .point")
    assert len(points) == 120
    screenshot(dash_duo, shots, "explore")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(dash_duo.driver).move_to_element(points[0]).pause(0.3).click().perform()
    dash_duo.wait_for_element("#explore-preview .product-card")  # the dot's product...
    dash_duo.find_element("#explore-open").click()  # ...and its page
    wait_url(dash_duo, lambda u: "/product/" in u)
    dash_duo.wait_for_element("#product-title")

    # About: what the recommendations are built from.
    dash_duo.find_element('.site-nav a[href="/about"]').click()
    about = wait_text(dash_duo, "#about-table", lambda t: "mobilenet-v1-fake" in t)
    assert "dw13-gap" in about and "120" in about
    wait_title(dash_duo, lambda t: t.startswith("How it works"))
    screenshot(dash_duo, shots, "about")

    # An unknown path reached without a page load: the 404 page, titled as such.
    push_path(dash_duo, "/no-such-page")
    wait_text(dash_duo, "#not-found-message", lambda t: t == "There is no page at this address.")
    wait_title(dash_duo, lambda t: t.startswith("Page not found"))

    # Unknown product: a friendly 404, not a crash.
    dash_duo.driver.get(f"{base}/product/no-such-product")
    message = wait_text(dash_duo, "#not-found-message", lambda t: "no-such-product" in t)
    assert "couldn't find" in message
    wait_title(dash_duo, lambda t: t.startswith("Page not found"))
    dash_duo.find_element("#not-found a").click()
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith("120 products"))

    assert console_errors(dash_duo, ("/product/no-such-product",)) == [], "console errors"


def test_unknown_path_shows_the_404_page(dash_duo: Any, fake_folder_euclidean: Path) -> None:
    dash_duo.start_server(create_app(fake_folder_euclidean).app)
    base = dash_duo.server_url.rstrip("/")
    dash_duo.driver.get(f"{base}/no-such-page")
    # Drawn by Dash itself (in the router's #page-content), not only the server's first frame.
    message = wait_text(dash_duo, "#page-content #not-found-message", bool)
    assert message == "There is no page at this address."
    assert "Nothing looks like this" in dash_duo.find_element("#not-found").text
    wait_title(dash_duo, lambda t: t.startswith("Page not found"))
    assert dash_duo.driver.current_url == f"{base}/no-such-page"
    # Its link leads back to the catalog.
    dash_duo.find_element("#page-content #not-found a").click()
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith("40 products"))
    wait_title(dash_duo, lambda t: t.startswith("Shop the catalog"))
    assert dash_duo.driver.current_url == f"{base}/"
    assert console_errors(dash_duo, ("/no-such-page",)) == [], "browser console errors"


def test_euclidean_product_page(dash_duo: Any, fake_folder_euclidean: Path, shots: Path
                                ) -> None:
    dash_duo.start_server(create_app(fake_folder_euclidean).app)
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + "/product/p02")
    dash_duo.wait_for_element("#similar-products .match-text")
    badges = [e.text for e in dash_duo.find_elements("#similar-products .match-text")]
    assert badges and all(b in ("Very close match", "Close match", "Loose match")
                          for b in badges), badges
    dash_duo.driver.set_window_size(390, 1400)  # a phone
    time.sleep(0.3)
    dash_duo.driver.save_screenshot(str(shots / "product-phone.png"))
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + "/")
    dash_duo.wait_for_element("#catalog-grid .product-link")
    dash_duo.driver.save_screenshot(str(shots / "catalog-phone.png"))
    no_sideways_scroll = (
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert dash_duo.driver.execute_script(no_sideways_scroll), "page scrolls sideways on a phone"
    assert dash_duo.get_logs() == []
