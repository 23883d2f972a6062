"""The explore map: colours that look like their names, and the product of a pointed or
tapped dot shown beside the map (with its photo and a link)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains

from shopfront import Shop
from shopfront.pages.explore import explore_figure, named_colour, point_product, preview
from tests.test_app_browser import push_path, wait_text
from tests.test_app_catalog_browser import open_catalog


def test_colour_attributes_are_drawn_in_their_colours(fake_folder: Path) -> None:
    figure = explore_figure(Shop(fake_folder), "baseColour")
    colours = {t["name"].split(" (")[0]: t["marker"] for t in figure["data"]}
    assert colours["Black"]["color"] == named_colour("Black") == "#1a1a1a"
    assert colours["White"]["color"] == "#ffffff" and colours["White"]["line"]["width"] > 0
    assert colours["Red"]["color"] != colours["Pink"]["color"]
    assert len({m["color"] for m in colours.values()}) == len(colours)  # all distinct
    gender = explore_figure(Shop(fake_folder), "gender")  # not colours: Plotly's palette
    assert all("color" not in t["marker"] for t in gender["data"])


@pytest.mark.parametrize(("value", "expected"), [
    ("Navy Blue", "navy"), ("Off White", "off"), ("Sea Green", "sea"), ("Light Pink", "pink"),
    ("Multi", None), ("", None),
])
def test_named_colours(value: str, expected: str | None) -> None:
    from shopfront.pages.explore import NAMED_COLOURS

    assert named_colour(value) == (NAMED_COLOURS[expected] if expected else None)


def test_a_point_shows_its_product(fake_folder: Path) -> None:
    shop = Shop(fake_folder)
    item = point_product({"points": [{"customdata": "p007"}]}, shop)
    assert item is not None and item.id == "p007"
    card = str(preview(item))
    assert item.thumb_url in card and item.href in card
    assert point_product({"points": [{"customdata": 7}]}, shop) is None
    assert "Point at a dot" in str(preview(None))


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1366])
def test_hovering_a_dot_shows_the_product(dash_duo: Any, fake_folder: Path,
                                         width: int) -> None:
    front = open_catalog(dash_duo, fake_folder, width, 900)
    push_path(dash_duo, "/explore")
    dash_duo.wait_for_element("#explore-graph .main-svg", timeout=20)  # Plotly drew it
    assert "Point at a dot" in dash_duo.find_element("#explore-preview").text
    point = dash_duo.find_element("#explore-graph .scatterlayer .trace .points path")
    deadline = time.monotonic() + 10
    while not dash_duo.find_elements("#explore-preview .product-card"):
        if width < 800:  # a phone: a tap (Plotly takes it on its drag layer, at the dot)
            ActionChains(dash_duo.driver).move_to_element(point).click().perform()
        else:  # a mouse: pointing at the dot is enough
            ActionChains(dash_duo.driver).move_to_element(point).perform()
        assert time.monotonic() < deadline, "no preview"
        time.sleep(0.3)
    figure = explore_figure(front.shop, front.shop.facets[0].name)
    first = front.shop.item(figure["data"][0]["customdata"][0])  # trace 0's first point
    assert first is not None
    wait_text(dash_duo, "#explore-preview .product-title", lambda t: t == first.title)
    image = dash_duo.find_element("#explore-preview img")
    assert image.get_attribute("src").endswith(first.thumb_url)
    dash_duo.find_element("#explore-open").click()
    wait_text(dash_duo, "#product-title", lambda t: t == first.title)
    assert dash_duo.get_logs() == []
