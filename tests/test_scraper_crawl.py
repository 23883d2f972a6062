"""The real crawler against a real ThreadingHTTPServer on 127.0.0.1 with injected faults."""

from __future__ import annotations

import csv
import hashlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from scraper.cli import main
from scraper.crawl import CrawlSummary, crawl
from scraper.demo_shop.server import FAULT_CARDS, FAULT_GOOD, DemoShopServer, start_server
from scraper.manifest import Manifest
from scraper.profile import Profile, parse_profile

REPO = Path(__file__).resolve().parents[1]
DELAY = 0.1


def fault_profile(base: str, **politeness) -> Profile:
    """The profile for the /faults/ shop: ids from data-sku, no product pages."""
    pol = {"delay": DELAY, "timeout": 0.5, "retries": 2, "backoff": 0.05,
           "max_image_bytes": 1_000_000, "contact": "tests@localhost", **politeness}
    return parse_profile({
        "name": "faults", "base_url": base,
        "image_hosts": ["127.0.0.1:9"],  # F-UNREACHABLE's image host: allowed, but down
        "start_urls": ["{base}/faults/shop.html", "{base}/faults/flaky-page.html"],
        "pagination": {"next": "a.next"},
        "listing": {"card": "li.product-card", "id": {"attr": "data-sku"}, "title": "h2.title",
                    "price": ".price"},
        "politeness": pol,
    }, "faults.toml")


def rows_of(folder: Path) -> list[dict[str, str]]:
    """catalog.csv as dicts."""
    with (folder / "catalog.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def product_state(folder: Path) -> dict[str, tuple[str, str]]:
    """sku -> (status, error) from the manifest (the fault product URLs end in <sku>.html)."""
    m = Manifest(folder / "manifest.sqlite")
    try:
        cur = m.db.execute("SELECT key, status, COALESCE(error, '') FROM products")
        return {k.rsplit("/", 1)[-1].removesuffix(".html").upper(): (s, e)
                for k, s, e in cur.fetchall()}
    finally:
        m.close()


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[DemoShopServer, Path, CrawlSummary]]:
    server = start_server(faults=True, slow_seconds=1.5)
    out = tmp_path_factory.mktemp("faults") / "catalog"
    try:
        summary = crawl(fault_profile(server.base_url), out, progress=False)
        yield server, out, summary
    finally:
        server.shutdown()
        server.server_close()


def test_good_products_reach_the_catalog(fault_run) -> None:
    _, out, summary = fault_run
    ids = {r["id"] for r in rows_of(out)}
    assert ids == FAULT_GOOD | {"F-PAGE"}
    assert summary.done == len(ids) and summary.products_found == len(FAULT_CARDS) + 1


def test_every_row_points_at_a_valid_file_with_its_sha256(fault_run) -> None:
    _, out, _ = fault_run
    rows = rows_of(out)
    assert list(rows[0])[:8] == ["id", "image", "title", "price", "currency", "product_url",
                                 "image_url", "sha256"]
    for row in rows:
        data = (out / row["image"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert row["image"].endswith(".png")  # extension from the decoded format
    row = next(r for r in rows if r["id"] == "F-OK-REL")
    assert (row["price"], row["currency"]) == ("1234.50", "USD")


def test_relative_srcset_lazy_and_protocol_relative_urls(fault_run) -> None:
    server, out, _ = fault_run
    urls = {r["id"]: r["image_url"] for r in rows_of(out)}
    base = server.base_url + "/faults/img/"
    assert urls["F-OK-REL"] == base + "ok-a.png"
    assert urls["F-OK-SRCSET"] == base + "ok-b.png"  # the largest srcset candidate
    assert urls["F-OK-PROTO"] == base + "ok-c.png"
    assert urls["F-OK-LAZY"] == base + "ok-d.png"  # data-src, not the placeholder
    assert urls["F-REDIRECT"] == base + "ok-e.png"  # where the bytes came from


def test_duplicate_images_are_stored_once(fault_run) -> None:
    _, out, _ = fault_run
    rows = {r["id"]: r for r in rows_of(out)}
    assert rows["F-DUP-1"]["image"] == rows["F-DUP-2"]["image"] == "images/F-DUP-1.png"
    files = list((out / "images").iterdir())
    assert len(files) == len({r["sha256"] for r in rows.values()})


@pytest.mark.parametrize(("sku", "status", "reason"), [
    ("F-404", "failed", "HTTP 404"),
    ("F-SLOW", "failed", "timed out"),
    ("F-HTML", "failed", "expected an image, got Content-Type text/html"),
    ("F-CORRUPT", "failed", "not a decodable image"),
    ("F-TRUNCATED", "failed", "truncated image"),
    ("F-HUGE", "skipped", "too large"),
    ("F-HUGE-STREAM", "skipped", "too large"),
    ("F-BOMB", "failed", "decompression bomb"),
    ("F-LOOP", "failed", "redirect loop"),
    ("F-ROBOTS", "skipped", "disallowed by robots.txt"),
    # RFC 9309: an unreachable robots.txt means "disallow all" for this run; the product
    # stays pending and is tried again by the next run
    ("F-UNREACHABLE", "pending", "robots.txt unreachable (connection refused"),
])
def test_faults_are_recorded_with_reasons(fault_run, sku: str, status: str, reason: str) -> None:
    _, out, summary = fault_run
    got_status, error = product_state(out)[sku]
    assert got_status == status and reason in error
    assert any(reason in r for r, _, _ in summary.failed + summary.skipped + summary.deferred)


def test_retries_500_and_429_honouring_retry_after(fault_run) -> None:
    server, _, _ = fault_run
    log = server.request_log
    flaky = [r.status for r in log if r.path.endswith("/flaky.png")]
    assert flaky == [500, 200]
    throttled = [r for r in log if r.path.endswith("/throttled.png")]
    assert [r.status for r in throttled] == [429, 200]
    assert throttled[1].at - throttled[0].at >= 1.0  # Retry-After: 1
    page = [r.status for r in log if r.path.endswith("/flaky-page.html")]
    assert page == [500, 200]


def test_politeness_robots_user_agent_and_gap(fault_run) -> None:
    server, _, _ = fault_run
    log = server.request_log
    assert not any(r.path.startswith("/members/") for r in log)
    assert log[0].path == "/robots.txt"
    assert all("lookalike-scraper" in r.user_agent and "tests@localhost" in r.user_agent
               for r in log)
    arrivals = sorted(r.at for r in log)  # the log is in completion order
    gaps = [b - a for a, b in pairwise(arrivals)]
    assert min(gaps) >= DELAY  # one request at a time, never faster than the delay


def test_empty_listing_is_reported_and_the_crawl_continues(fault_run) -> None:
    _, _, summary = fault_run
    assert any(url.endswith("/faults/empty.html") and "no products found" in reason
               for url, reason in summary.page_problems)
    assert any("listing page" in line and "empty.html" in line for line in summary.lines())


def test_rerun_retries_only_what_failed_without_duplicates(tmp_path: Path) -> None:
    server = start_server(faults=True, slow_seconds=1.5)
    try:
        out = tmp_path / "cat"
        prof = fault_profile(server.base_url, delay=0, retries=0, timeout=0.3)
        crawl(prof, out, progress=False)  # flaky and 429 fail: no retries allowed
        first = {r["id"] for r in rows_of(out)}
        assert "F-FLAKY" not in first and product_state(out)["F-FLAKY"][0] == "failed"
        assert "F-PAGE" not in first  # its listing page answered 500 and was not retried
        server.request_log.clear()  # keep the fault counters: flaky/429 now answer 200
        summary = crawl(prof, out, progress=False)
        paths = [r.path for r in server.request_log]
        # finished listing pages and products are not fetched again; failures are retried
        assert "/faults/shop.html" not in paths and "/faults/img/ok-a.png" not in paths
        assert "/faults/img/flaky.png" in paths and "/faults/img/missing.png" in paths
        rows = rows_of(out)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids))
        assert set(ids) == first | {"F-FLAKY", "F-429", "F-PAGE"}  # failed page re-read too
        assert summary.new_products == 1
        # --refresh re-reads the listings but keeps finished rows
        server.request_log.clear()
        crawl(prof, out, refresh=True, progress=False)
        assert "/faults/shop.html" in [r.path for r in server.request_log]
        assert [r["id"] for r in rows_of(out)] == ids
    finally:
        server.shutdown()
        server.server_close()


def test_robots_crawl_delay_is_honoured(tmp_path: Path) -> None:
    server = start_server(faults=True, crawl_delay=1)
    try:
        prof = parse_profile({"name": "cd", "start_urls": [server.base_url +
                              "/faults/flaky-page.html"], "listing": {"card": "li"},
                              "politeness": {"delay": 0, "backoff": 0}}, "cd.toml")
        summary = crawl(prof, tmp_path / "cat", progress=False)
        assert summary.done == 1
        arrivals = sorted(r.at for r in server.request_log)
        assert len(arrivals) == 4  # robots, 500, 200 (a urllib3 retry), image
        assert min(b - a for a, b in pairwise(arrivals)) >= 1.0
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_one_line_and_exit_1(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(f'start_urls = ["http://127.0.0.1:{_closed_port()}/list"]\n'
                       '[listing]\ncard = "li"\n[politeness]\ndelay = 0\nretries = 1\n'
                       "backoff = 0\n")
    assert main(["crawl", str(profile), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "connection refused" in captured.err and "Traceback" not in captured.err
    assert "0 in catalog" in captured.out and (tmp_path / "o" / "catalog.csv").is_file()


@pytest.mark.parametrize(("toml", "message"), [
    ('start_urls = ["http://127.0.0.1:1/"]\n[listing]\ntitel = "h1"\n',
     "unknown key 'listing.titel'"),
    ('start_urls = ["http://127.0.0.1:1/"]\n[listing]\ncard = "li >> a"\n',
     "'listing.card' is not a valid CSS selector"),
    ("start_urls = [", "not valid TOML"),
])
def test_profile_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                            toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    assert main(["crawl", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_usage_errors_via_python_m(tmp_path: Path) -> None:
    for args in (["crawl", "no-such-profile", "--out", str(tmp_path / "o")],
                 ["crawl", "demo", "--out", str(tmp_path / "o"), "--delay", "soon"],
                 ["crawl", "demo"]):
        proc = subprocess.run([sys.executable, "-m", "scraper", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
