"""The demo shop end to end: generated site, bundled profile, full crawl, kill and resume."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from PIL import Image

from scraper.crawl import crawl
from scraper.demo_shop.draw import photo_jpegs
from scraper.demo_shop.products import demo_products
from scraper.demo_shop.server import DemoShopServer, start_server
from scraper.manifest import Manifest
from scraper.profile import load_profile

REPO = Path(__file__).resolve().parents[1]


def rows_of(folder: Path) -> list[dict[str, str]]:
    """catalog.csv as dicts."""
    with (folder / "catalog.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShopServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def reference(shop: DemoShopServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted crawl of the demo shop with the bundled profile (delay 0)."""
    profile = load_profile("demo", base_url=shop.base_url)
    profile = replace(profile, politeness=replace(profile.politeness, delay=0))
    out = tmp_path_factory.mktemp("demo") / "catalog"
    summary = crawl(profile, out, progress=False)
    assert summary.n_failed == 0
    return out


def test_demo_products_are_deterministic_and_varied() -> None:
    products = demo_products()
    assert 140 <= len(products) <= 170
    cats = Counter(p.category for p in products)
    assert len(cats) >= 8 and min(cats.values()) >= 15
    assert len({p.colour for p in products}) >= 10 and len({p.pattern for p in products}) >= 4
    assert demo_products() == products
    assert photo_jpegs(products[0]) == photo_jpegs(products[0])


def test_demo_crawl_end_to_end(reference: Path, shop: DemoShopServer) -> None:
    rows = rows_of(reference)
    products = demo_products()
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    # everything but the two robots-disallowed "members only" products
    assert set(ids) == {p.sku for p in products if not p.members_only}
    assert not any(r.path.startswith("/members/") for r in shop.request_log)
    by_id = {r["id"]: r for r in rows}
    p = next(p for p in products if p.sku == "LK-BAG-003")
    row = by_id["LK-BAG-003"]
    assert (row["title"], row["price"], row["currency"]) == (p.title, p.price, "EUR")
    assert (row["category"], row["colour"], row["pattern"], row["style"]) == (
        p.category, p.colour, p.pattern, p.variant)
    assert row["product_url"] == f"{shop.base_url}{p.page_path}"
    # full-size images from the product pages' JSON-LD, stored as real 512x512 JPEGs
    for row in rows:
        assert row["image_url"].endswith("-512.jpg")
        with Image.open(reference / row["image"]) as im:
            assert (im.format, im.size) == ("JPEG", (512, 512))
    # the re-issue shows the same photo: one file, two rows
    assert by_id["LK-TOP-018"]["image"] == by_id["LK-TOP-001"]["image"] == "images/LK-TOP-001.jpg"
    assert len(list((reference / "images").iterdir())) == len(rows) - 1
    assert len(set(r["category"] for r in rows)) >= 8


def test_listing_cards_exercise_lazy_srcset_and_relative_urls(reference: Path) -> None:
    m = Manifest(reference / "manifest.sqlite")
    try:
        records = [json.loads(r) for (r,) in m.db.execute("SELECT record FROM products")]
    finally:
        m.close()
    images = Counter(r["image_url"].rsplit("-", 1)[-1] for r in records)
    # lazy data-src and srcset cards give the 512 px photo, plain src cards the 256 px one
    assert images["512.jpg"] >= 60 and images["256.jpg"] >= 60
    assert all(r["image_url"].startswith("http://127.0.0.1:") for r in records)


def _run_crawl(shop: DemoShopServer, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scraper", "crawl", "demo", "--base-url", shop.base_url,
         "--out", str(out), "--delay", "0.01", "--no-progress"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def test_kill_at_any_moment_and_resume(reference: Path, shop: DemoShopServer,
                                       tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    images = out / "images"

    def n_images() -> int:
        return len(list(images.glob("*.jpg"))) if images.is_dir() else 0

    # kill 1: as soon as the manifest exists (listing phase); kill 2: mid-way through images
    first = _run_crawl(shop, out)
    _kill_when(first, lambda: (out / "manifest.sqlite").exists())
    second = _run_crawl(shop, out)
    _kill_when(second, lambda: n_images() >= 60)
    assert second.returncode == -signal.SIGKILL, "the crawl finished before it could be killed"
    assert 0 < n_images() < 151
    final = _run_crawl(shop, out)
    stdout, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    assert "152 in catalog" in stdout and "0 failed" in stdout
    # the same catalog, byte for byte, as the crawl that was never interrupted
    assert (out / "catalog.csv").read_bytes() == (reference / "catalog.csv").read_bytes()
    assert sorted(p.name for p in images.iterdir()) == sorted(
        p.name for p in (reference / "images").iterdir())


def test_demo_shop_command_serves_on_loopback() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "scraper", "demo-shop", "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("demo shop: http://127.0.0.1:")
        url = line.split()[2]
        robots = requests.get(url + "robots.txt", timeout=10)
        assert "Disallow: /members/" in robots.text
        page = requests.get(url + "shop/page/1.html", timeout=10)
        assert page.text.count('class="product-card"') == 24
        img = requests.get(url + "img/LK-HAT-002-256.jpg", timeout=10)
        assert Image.open(io.BytesIO(img.content)).size == (256, 256)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
