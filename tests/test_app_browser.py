"""What a shopper does, in headless Chromium through dash[testing]'s `dash_duo`.

Screenshots of the catalog and product pages go to $LOOKALIKE_SCREENSHOTS (default: the
test's tmp folder) for a human to look at.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException

import app as lookalike

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


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LOOKALIKE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_shopper_journey(dash_duo: Any, fake_folder: Path, shots: Path) -> None:
    catalog = lookalike.Catalog.load(fake_folder)
    dash_duo.start_server(lookalike.create_app(fake_folder))
    base = dash_duo.server_url.rstrip("/")

    # Catalog: a page of cards with thumbnails served by the app.
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith("120 products"))
    cards = dash_duo.find_elements("#catalog-grid .product-link")
    assert len(cards) == lookalike.PAGE_SIZE
    dash_duo.wait_for_element("#catalog-grid img")
    loaded = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#catalog-grid img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length"
    )
    assert loaded > 0
    # Markup in a scraped title is shown as text, not interpreted.
    assert dash_duo.driver.find_elements_by_css_selector("#catalog-grid script") == []
    first_title = dash_duo.find_elements("#catalog-grid .product-title")[0].text
    assert first_title == catalog.items[0].title
    screenshot(dash_duo, shots, "catalog")

    # Search: the grid, the count and the URL follow.
    n_red = len(catalog.matching(lookalike.CatalogQuery(q="red")))
    dash_duo.find_element("#catalog-search").send_keys("red")
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith(f"{n_red} product"))
    wait_url(dash_duo, lambda u: "q=red" in u)

    # Filter by an attribute built from the data.
    men = dict(catalog.facets[0].options)["Men"]
    dash_duo.select_dcc_dropdown('[id*="catalog-filter"][id*="gender"]', value=f"Men ({men})")
    n_red_men = len(
        catalog.matching(lookalike.CatalogQuery(q="red", filters=(("gender", ("Men",)),)))
    )
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith(f"{n_red_men} product"))
    wait_url(dash_duo, lambda u: "gender=Men" in u)
    dash_duo.driver.find_element_by_tag_name("body").click()  # close the dropdown menu

    # Open a product: its page, its similar products.
    target = dash_duo.find_elements("#catalog-grid .product-link")[0]
    target_id = target.get_attribute("href").rsplit("/", 1)[1]
    target.click()
    item = catalog.item(target_id)
    assert item is not None
    wait_text(dash_duo, "#product-title", lambda t: t == item.title)
    assert dash_duo.driver.current_url == f"{base}/product/{target_id}"
    similar = dash_duo.find_elements("#similar-products .product-link")
    assert len(similar) == len(catalog.neighbours[catalog.index[target_id]]) == 8
    badges = [e.text for e in dash_duo.find_elements("#similar-products .match-text")]
    assert all(b.endswith("% match") for b in badges), badges
    screenshot(dash_duo, shots, "product")

    # Click a similar product: its page.
    neighbour_id = similar[0].get_attribute("href").rsplit("/", 1)[1]
    similar[0].click()
    neighbour = catalog.item(neighbour_id)
    assert neighbour is not None
    wait_text(dash_duo, "#product-title", lambda t: t == neighbour.title)

    # Back button: the previous product, then the catalog as it was left.
    dash_duo.driver.back()
    wait_text(dash_duo, "#product-title", lambda t: t == item.title)
    dash_duo.driver.back()
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith(f"{n_red_men} product"))
    assert dash_duo.find_element("#catalog-search").get_attribute("value") == "red"

    # Explore: the map, coloured by an attribute; clicking a point opens its product.
    dash_duo.find_element('.site-nav a[href="/explore"]').click()
    dash_duo.wait_for_element("#explore-graph .js-plotly-plot", timeout=15)
    legend = wait_text(dash_duo, "#explore-graph .legend", lambda t: "Men" in t)
    assert "Women" in legend
    points = dash_duo.driver.find_elements_by_css_selector("#explore-graph .scatterlayer .point")
    assert len(points) == 120
    screenshot(dash_duo, shots, "explore")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(dash_duo.driver).move_to_element(points[0]).pause(0.3).click().perform()
    wait_url(dash_duo, lambda u: "/product/" in u)
    dash_duo.wait_for_element("#product-title")

    # About: what the recommendations are built from.
    dash_duo.find_element('.site-nav a[href="/about"]').click()
    about = wait_text(dash_duo, "#about-table", lambda t: "mobilenet-v1-fake" in t)
    assert "dw13-gap" in about and "120" in about
    screenshot(dash_duo, shots, "about")

    # Unknown product: a friendly 404, not a crash.
    dash_duo.driver.get(f"{base}/product/no-such-product")
    message = wait_text(dash_duo, "#not-found-message", lambda t: "no-such-product" in t)
    assert "couldn't find" in message
    dash_duo.find_element("#not-found a").click()
    wait_text(dash_duo, "#catalog-count", lambda t: t.startswith("120 products"))

    assert dash_duo.get_logs() == [], "browser console errors"


def test_euclidean_product_page(dash_duo: Any, fake_folder_euclidean: Path, shots: Path
                                ) -> None:
    dash_duo.start_server(lookalike.create_app(fake_folder_euclidean))
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + "/product/p02")
    dash_duo.wait_for_element("#similar-products .match-text")
    badges = [e.text for e in dash_duo.find_elements("#similar-products .match-text")]
    assert badges[:2] == ["Closest match", "#2 closest"]
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
