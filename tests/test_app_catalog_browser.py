"""The catalog page in a real browser: page links that are real links and bring the new
results into view, and searches that find what people type."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shopfront import ShopFront, create_app
from shopfront.pages.catalog import PAGE_SIZE
from shopfront.query import CatalogQuery
from tests.test_app_browser import wait_text, wait_url

pytestmark = pytest.mark.browser


def open_catalog(dash_duo: Any, folder: Path, width: int, height: int = 844) -> ShopFront:
    """The shop front of `folder` in the browser at this window size, its catalog drawn."""
    front = create_app(folder)
    dash_duo.driver.set_window_size(width, height)
    dash_duo.start_server(front.app)
    dash_duo.wait_for_element("#catalog-grid .product-card .product-title")
    return front


@pytest.mark.parametrize("width", [390, 1366])
def test_page_links_go_to_the_next_page_and_its_top(dash_duo: Any, fake_folder: Path,
                                                   width: int) -> None:
    front = open_catalog(dash_duo, fake_folder, width)
    second = front.shop.matching(CatalogQuery(page=2), PAGE_SIZE)[2][0]

    link = dash_duo.find_element("#catalog-pagination a[href$='/?page=2'][title='2']")
    assert link.get_attribute("href").endswith("/?page=2")  # a real address: new tabs work
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", link)
    link.click()  # from the bottom of the page, as a shopper would
    wait_url(dash_duo, lambda url: url.endswith("/?page=2"))
    wait_text(dash_duo, "#catalog-grid .product-title", lambda t: t == second.title)
    wait_text(dash_duo, "#catalog-pagination [aria-current='page']", lambda t: t == "2")
    top_js = "return document.getElementById('catalog-count').getBoundingClientRect().top"
    deadline = time.monotonic() + 10  # Bootstrap scrolls smoothly
    while not -2 <= (top := dash_duo.driver.execute_script(top_js)) < 300:
        assert time.monotonic() < deadline, f"results not in view: top at {top}"
        time.sleep(0.1)

    dash_duo.driver.back()  # Back returns to page 1
    wait_url(dash_duo, lambda url: "page=" not in url)
    first = front.shop.matching(CatalogQuery(), PAGE_SIZE)[2][0]
    wait_text(dash_duo, "#catalog-grid .product-title", lambda t: t == first.title)
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("width", [390, 1366])
def test_find_similar_goes_straight_to_the_look_alikes(dash_duo: Any, fake_folder: Path,
                                                       width: int) -> None:
    front = open_catalog(dash_duo, fake_folder, width)
    first = front.shop.matching(CatalogQuery(), PAGE_SIZE)[2][0]
    link = dash_duo.find_elements("#catalog-grid .find-similar")[0]
    assert link.text.startswith("Find similar")
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", link)
    link.click()
    wait_text(dash_duo, "#product-title", lambda t: t == first.title)
    dash_duo.wait_for_element("#similar-products .product-card")
    top_js = ("return document.getElementById('similar-products')"
              ".getBoundingClientRect().top")
    deadline = time.monotonic() + 10
    while not 0 <= (top := dash_duo.driver.execute_script(top_js)) < 844:
        assert time.monotonic() < deadline, f"look-alikes not on screen: top at {top}"
        time.sleep(0.1)


def test_on_a_phone_filters_wait_behind_a_button(dash_duo: Any, fake_folder: Path) -> None:
    open_catalog(dash_duo, fake_folder, 390)
    panel = dash_duo.find_element("#catalog-filters")
    assert not panel.is_displayed()
    top = dash_duo.driver.execute_script(
        "return document.querySelector('#catalog-grid .product-card').getBoundingClientRect().top")
    assert top < 844 * 0.75, top  # the first products are on the first screen
    toggle = dash_duo.find_element("#catalog-filters-toggle")
    toggle.click()
    assert panel.is_displayed() and toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    assert not panel.is_displayed()
    dash_duo.driver.set_window_size(1366, 900)  # a desktop shows them inline
    assert panel.is_displayed() and not toggle.is_displayed()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_product_rows_are_near_the_top_and_labelled(
    dash_duo: Any, fake_folder: Path, shots: Path, width: int, height: int
) -> None:
    """Issue 9, item 1: the rows right under the product, within the first screen on a
    desktop and the second on a phone; labels from the rows' calibration, no raw numbers;
    each row scrolls sideways without scrolling the page sideways."""
    front = create_app(fake_folder)
    dash_duo.driver.set_window_size(width, height)
    dash_duo.start_server(front.app)
    dash_duo.driver.get(dash_duo.server_url.rstrip("/") + "/product/p003")
    dash_duo.wait_for_element("#similar-products .product-card")
    inner = dash_duo.driver.execute_script("return window.innerHeight")
    first_card_top = dash_duo.driver.execute_script(
        "return document.querySelector('#similar-products .product-card')"
        ".getBoundingClientRect().top")
    screens = 1 if width > 1000 else 2
    assert first_card_top + 120 < screens * inner, (first_card_top, inner)
    headings = [e.text for e in dash_duo.find_elements(".rec-row h2")]
    assert headings == ["Looks like this", "Same style, other colours"]
    labels = [e.text for e in dash_duo.find_elements(".rec-row .match-text")]
    assert len(labels) == 16
    assert set(labels) <= {"Very close match", "Close match", "Loose match"}
    weak = dash_duo.find_elements(".rec-row .match-weak .match-text")
    assert all(e.text == "Loose match" for e in weak)
    assert dash_duo.driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    dash_duo.driver.save_screenshot(str(shots / f"product-rows-{width}.png"))
    assert dash_duo.get_logs() == []
