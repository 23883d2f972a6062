"""What a shopper sees before any script has run: the browser is the judge.

Chromium with JavaScript turned off shows exactly the document the server sent, which is
what a slow phone paints first (and what a link preview or a crawler reads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shopfront import create_app
from tests.conftest import pytest_setup_options

pytestmark = pytest.mark.browser


@pytest.fixture
def no_script_browser() -> Any:
    from selenium import webdriver

    options = pytest_setup_options()
    options.add_argument("--headless=new")
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(options=options)
    yield driver
    driver.quit()


def test_first_frame_shows_the_shop(dash_thread_server: Any, no_script_browser: Any,
                                    fake_folder: Path, tmp_path: Path) -> None:
    front = create_app(fake_folder)
    dash_thread_server(front.app)
    base = dash_thread_server.url.rstrip("/")
    browser = no_script_browser

    browser.get(f"{base}/product/p003")
    item = front.shop.item("p003")
    assert item is not None
    text = browser.find_element("tag name", "body").text
    assert "Loading..." not in text
    assert "lookalike" in text and "Catalog" in text  # the navbar
    assert item.title in text and "Looks like this" in text
    assert browser.title == f"{item.title} · lookalike"
    cards = browser.find_elements("css selector", "#similar-products .product-card")
    assert len(cards) == 8
    image = browser.find_element("id", "product-image")
    assert image.get_attribute("src").endswith("/thumbs/p003.jpg")
    # React never ran: its layout (with #page-content) did not replace the server's frame
    assert not browser.find_elements("id", "page-content")
    browser.save_screenshot(str(tmp_path / "first-frame-product.png"))

    browser.get(f"{base}/")
    assert len(browser.find_elements("css selector", ".product-card")) == 24
    assert browser.title == "Shop the catalog · lookalike"

    browser.get(f"{base}/no/such/page")
    assert "Nothing looks like this" in browser.find_element("tag name", "body").text
    assert browser.title == "Page not found · lookalike"
