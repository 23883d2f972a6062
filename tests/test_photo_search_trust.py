"""Photo search knows when nothing matches (issue 17, item 4), on real photos: fashion-small-2k
built without 200 of its photos and the shared MobileNet. Photos that are not products
(scikit-image's sample photos) get "nothing in this shop looks like this photo", no vote
and no rows; the 200 held-back product photos are answered and their articleType voted."""

from __future__ import annotations

import base64
import csv
import io
import os
import random
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline_helpers import FASHION, SHARED_MODEL, needs_shared

pytestmark = [pytest.mark.slow, needs_shared]
SAMPLE_PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "camera", "moon", "brick",
                 "hubble_deep_field", "coins", "clock", "page", "text", "grass", "gravel",
                 "colorwheel", "immunohistochemistry", "retina", "checkerboard", "horse")


@pytest.fixture(scope="module")
def held_back(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    """fashion-small-2k without 200 random products (seeded), built with default options."""
    from pipeline.build import BuildOptions, build

    root = tmp_path_factory.mktemp("held")
    with open(FASHION / "styles.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows = [r for r in rows if (FASHION / "images" / f"{r['id']}.jpg").is_file()]
    held = set(random.Random(17).sample([r["id"] for r in rows], 200))
    images = root / "images"
    images.mkdir()
    for r in rows:
        if r["id"] not in held:
            os.symlink(FASHION / "images" / f"{r['id']}.jpg", images / f"{r['id']}.jpg")
    meta = root / "styles.csv"
    with open(meta, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["id"] not in held)
    out = root / "pre"
    build(BuildOptions(catalog=images, metadata=meta, title_column="productDisplayName",
                       model=str(SHARED_MODEL), out=out, cache_dir=root / "cache",
                       progress=False))
    return out, [r for r in rows if r["id"] in held]


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def test_photos_that_are_not_products_are_refused_and_held_back_ones_answered(held_back):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra)")
    from pipeline.precomputed import read_precomputed
    from pipeline.search import PhotoSearcher

    out, held = held_back
    pre = read_precomputed(out)
    upload = pre.meta["upload"]
    assert upload["method"] == "pca-residual" and upload["max_residual"] > 0
    searcher = PhotoSearcher(pre, SHARED_MODEL)
    for name in SAMPLE_PHOTOS:
        result = searcher.search(_png(getattr(skimage_data, name)()))
        assert result.nothing, name
        assert result.vote is None and not result.rows and not result.neighbours
    answered = voted = 0
    for r in held:
        result = searcher.search((FASHION / "images" / f"{r['id']}.jpg").read_bytes())
        if result.nothing:
            continue
        answered += 1
        assert result.rows["similar"] and result.vote is not None
        attr, label, _, _ = result.vote
        voted += attr == "articleType" and label == r["articleType"]
        # other colours never repeats what "Looks like this" shows
        shown = {pid for pid, _ in result.rows["similar"]}
        assert not shown & {pid for pid, _ in result.rows.get("other_colours", [])}
    assert answered >= 0.95 * len(held)
    assert voted >= 0.70 * answered


def test_the_shop_front_says_nothing_matches(held_back):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra)")
    from pipeline.precomputed import read_precomputed
    from pipeline.search import PhotoSearcher
    from shopfront.pages.search import NOTHING_MATCHES_TEXT, run_search
    from shopfront.shop import Shop

    out, _ = held_back
    pre = read_precomputed(out)
    searcher = PhotoSearcher(pre, SHARED_MODEL)
    shop = Shop(out)
    data = "data:image/png;base64," + base64.b64encode(
        _png(skimage_data.astronaut())).decode()
    layout, saved = run_search(searcher, shop, data, "astronaut.png")
    text = str(layout)
    assert "photo-nothing" in text and NOTHING_MATCHES_TEXT in text
    assert "photo-vote" not in text and "photo-similar" not in text and saved is None


@pytest.mark.browser
def test_a_shopper_sees_that_nothing_matches(dash_duo, held_back, tmp_path: Path):
    """In the browser: a photo of an astronaut gets the plain "nothing in this shop" answer
    with the photo and no vote or cards; a product photo then gets its rows again."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra)")
    from pipeline.precomputed import read_precomputed
    from pipeline.search import PhotoSearcher
    from shopfront.pages.search import NOTHING_MATCHES_TEXT
    from tests.browser_wait import wait_for
    from tests.test_app_dynamic import shared_model_front

    out, held = held_back
    searcher = PhotoSearcher(read_precomputed(out), SHARED_MODEL)
    dash_duo.start_server(shared_model_front(out, searcher).app)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/search")
    dash_duo.wait_for_element("#photo-upload")
    astronaut = tmp_path / "astronaut.png"
    astronaut.write_bytes(_png(skimage_data.astronaut()))
    upload = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    upload.send_keys(str(astronaut))
    nothing = wait_for(lambda: driver.find_elements_by_css_selector("#photo-nothing"), 60,
                       "the nothing-matches answer")
    assert NOTHING_MATCHES_TEXT in nothing[0].text
    assert not driver.find_elements_by_css_selector("#photo-vote, .product-link")
    shots = Path(os.environ.get("LOOKALIKE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shots / "search-nothing-matches.png"))
    upload = driver.find_element_by_css_selector("#photo-upload input[type=file]")
    upload.send_keys(str(FASHION / "images" / f"{held[0]['id']}.jpg"))
    wait_for(lambda: driver.find_elements_by_css_selector("#photo-similar .product-link"), 60,
             "result cards")
    assert not driver.find_elements_by_css_selector("#photo-nothing")
