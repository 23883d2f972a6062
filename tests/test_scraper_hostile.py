"""Servers that misbehave (issue 11, items 3-6, 9, 11): robots.txt by RFC 9309, hard
deadlines against slow drips, Retry-After that pauses or drops a host, staying on the
shop's hosts, hosts in parallel, one crawl per folder. Real servers on 127.0.0.1."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

from scraper import ScraperError
from scraper.crawl import crawl
from scraper.fetch import FetchError, PoliteSession
from scraper.lock import FolderLock
from scraper.profile import Politeness, parse_profile
from tests.scraper_servers import Reply, ScriptedServer, png

REPO = Path(__file__).resolve().parents[1]
FAST = {"delay": 0, "retries": 0, "backoff": 0, "timeout": 5, "contact": "t@localhost"}


def listing(*cards: tuple[str, str]) -> Reply:
    """A listing page of product cards: (sku, image URL)."""
    body = "".join(f'<li class="c" data-sku="{sku}"><img src="{img}"><h2>{sku}</h2></li>'
                   for sku, img in cards)
    return Reply(body=f"<ul>{body}</ul>".encode())


def profile(start: str, **extra) -> object:
    data = {"name": "t", "start_urls": [start],
            "listing": {"card": "li.c", "id": {"attr": "data-sku"}, "title": "h2"},
            "politeness": {**FAST, **extra.pop("politeness", {})}, **extra}
    return parse_profile(data, "t.toml")


def rows(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "catalog.csv").open(encoding="utf-8", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


@pytest.fixture
def servers():
    started: list[ScriptedServer] = []

    def start(routes: dict) -> ScriptedServer:
        server = ScriptedServer(routes)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- robots.txt (RFC 9309) -------------------------------------------------------------

def _robots_crawl(servers, tmp_path: Path, robots_routes: dict) -> tuple[ScriptedServer, object]:
    shop = servers({"/list": listing(("A", "/a.png")), "/a.png": Reply(body=png((200, 0, 0)),
                                                                       ctype="image/png"),
                    **robots_routes})
    summary = crawl(profile(shop.base + "/list"), tmp_path / "cat", progress=False)
    return shop, summary


def test_robots_5xx_disallows_the_host_for_the_run_and_is_retried_next_run(servers,
                                                                             tmp_path) -> None:
    answers = iter([Reply(503, b"down"), Reply(body=b"User-agent: *\nAllow: /\n",
                                               ctype="text/plain")])
    shop, summary = _robots_crawl(servers, tmp_path, {"/robots.txt": lambda n: next(answers)})
    assert shop.paths() == ["/robots.txt"]  # nothing else was asked for
    assert summary.done == 0
    assert any("robots.txt answered HTTP 503" in reason for _, reason in summary.host_problems)
    assert any("robots.txt answered HTTP 503" in line for line in summary.lines())
    # the listing page stays to do: the next run reads robots.txt again and crawls
    again = crawl(profile(shop.base + "/list"), tmp_path / "cat", progress=False)
    assert again.done == 1 and shop.paths().count("/robots.txt") == 2


def test_robots_unreachable_disallows_the_host(tmp_path) -> None:
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    summary = crawl(profile(f"http://127.0.0.1:{port}/list"), tmp_path / "cat",
                    progress=False)
    assert any("robots.txt unreachable" in reason for _, reason in summary.host_problems)


@pytest.mark.parametrize("status", [404, 403, 401, 410])
def test_robots_4xx_means_no_rules(servers, tmp_path, status: int) -> None:
    shop, summary = _robots_crawl(servers, tmp_path, {"/robots.txt": Reply(status, b"no")})
    assert summary.done == 1 and "/a.png" in shop.paths()


def test_robots_only_the_first_500_kib_is_parsed(servers, tmp_path) -> None:
    big = b"User-agent: *\nDisallow: /\n" + b"# padding\n" * 60_000  # 600 KB
    shop, summary = _robots_crawl(servers, tmp_path, {"/robots.txt": Reply(body=big,
                                                                           ctype="text/plain")})
    assert shop.paths() == ["/robots.txt"] and summary.done == 0
    assert summary.page_problems and "disallowed by robots.txt" in summary.page_problems[0][1]


def test_robots_redirects_are_followed_even_to_another_host(servers, tmp_path) -> None:
    other = servers({"/robots.txt": Reply(body=b"User-agent: *\nDisallow: /\n",
                                          ctype="text/plain")})
    shop, summary = _robots_crawl(servers, tmp_path, {
        "/robots.txt": Reply(301, headers={"Location": "/r1"}),
        "/r1": Reply(302, headers={"Location": other.base + "/robots.txt"})})
    assert summary.done == 0 and "/list" not in shop.paths()
    assert other.paths() == ["/robots.txt"]


def test_robots_more_than_five_redirects_means_no_rules(servers, tmp_path) -> None:
    hops = {f"/r{i}": Reply(302, headers={"Location": f"/r{i + 1}"}) for i in range(7)}
    shop, summary = _robots_crawl(servers, tmp_path, {
        "/robots.txt": Reply(302, headers={"Location": "/r0"}), **hops})
    assert summary.done == 1
    assert sum(p.startswith("/r") for p in shop.paths()) == 6  # robots.txt + 5 hops


def test_robots_longest_match_and_wildcards(servers) -> None:
    shop = servers({"/robots.txt": Reply(body=b"User-agent: *\nDisallow: /p/\n"
                                         b"Allow: /p/public\nDisallow: /*.pdf$\n",
                                         ctype="text/plain")})
    session = PoliteSession(Politeness(delay=0))
    try:
        assert session.allowed(shop.base + "/p/public/1.html")  # longest match wins
        assert not session.allowed(shop.base + "/p/secret.html")
        assert not session.allowed(shop.base + "/doc/x.pdf")
        assert session.allowed(shop.base + "/doc/x.pdf?page=2")
    finally:
        session.close()


# --- deadlines --------------------------------------------------------------------------

@pytest.mark.parametrize("drip_headers", [False, True])
def test_a_slow_drip_cannot_hold_a_request_beyond_its_deadline(servers, drip_headers) -> None:
    shop = servers({"/robots.txt": Reply(404),
                    "/drip": Reply(body=b"x" * 40, drip=1.0, drip_headers=drip_headers)})
    deadline = 2.0
    session = PoliteSession(Politeness(delay=0, retries=2, timeout=deadline,
                                       max_download_seconds=deadline))
    try:
        start = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            session.get(shop.base + "/drip", 1_000_000)
        held = time.monotonic() - start
    finally:
        session.close()
    assert held < 3 * deadline  # 40 s of drip otherwise
    assert shop.counts["/drip"] == 1  # a missed deadline is not retried


def test_the_whole_image_download_has_a_deadline_in_a_crawl(servers, tmp_path) -> None:
    shop = servers({"/robots.txt": Reply(404),
                    "/list": listing(("SLOW", "/slow.png"), ("OK", "/ok.png")),
                    "/slow.png": Reply(body=png((1, 2, 3)), ctype="image/png", drip=0.2),
                    "/ok.png": Reply(body=png((9, 9, 9)), ctype="image/png")})
    start = time.monotonic()
    summary = crawl(profile(shop.base + "/list", politeness={"max_download_seconds": 1.5}),
                    tmp_path / "cat", progress=False)
    assert time.monotonic() - start < 3 * 1.5 + 2
    assert set(rows(tmp_path / "cat")) == {"OK"}
    assert any("timed out" in reason for reason, _, _ in summary.failed)


# --- Retry-After, host back-off, request counts ----------------------------------------

def test_retry_after_beyond_the_maximum_drops_the_host_and_others_go_on(servers,
                                                                         tmp_path) -> None:
    cdn = servers({"/robots.txt": Reply(404),
                   **{f"/{n}.png": Reply(429, b"later", {"Retry-After": "99999"})
                      for n in range(5)}})
    shop = servers({"/robots.txt": Reply(404),
                    "/list": listing(*[(f"CDN{n}", f"{cdn.base}/{n}.png") for n in range(5)],
                                     ("HOME", "/home.png")),
                    "/home.png": Reply(body=png((5, 5, 5)), ctype="image/png")})
    prof = profile(shop.base + "/list", image_hosts=[cdn.netloc],
                   politeness={"retries": 3, "max_retry_after": 5, "max_host_pause": 60})
    start = time.monotonic()
    summary = crawl(prof, tmp_path / "cat", progress=False)
    assert time.monotonic() - start < 10  # neither 99999 s nor the cap per product
    assert cdn.paths() == ["/robots.txt", "/0.png"]  # one 429, then the host is left alone
    assert set(rows(tmp_path / "cat")) == {"HOME"}
    assert any("Retry-After" in reason and "dropped" in reason
               for _, reason in summary.host_problems)
    assert sum(n for _, n, _ in summary.deferred) == 5  # left pending for the next run
    assert any("left pending 5" in line for line in summary.lines())
    # every request the servers saw is counted, retries and robots.txt included
    assert summary.requests == len(cdn.log) + len(shop.log)


def test_retry_after_over_the_cap_pauses_only_that_host(servers, tmp_path) -> None:
    cdn = servers({"/robots.txt": Reply(404),
                   "/a.png": lambda n: (Reply(503, b"busy", {"Retry-After": "2"}) if n == 1
                                        else Reply(body=png((1, 1, 1)), ctype="image/png"))})
    shop = servers({"/robots.txt": Reply(404),
                    "/list": listing(("A", cdn.base + "/a.png"),
                                     *[(f"H{n}", f"/h{n}.png") for n in range(4)]),
                    **{f"/h{n}.png": Reply(body=png((n, 50, 50)), ctype="image/png")
                       for n in range(4)}})
    prof = profile(shop.base + "/list", image_hosts=[cdn.netloc],
                   politeness={"retries": 2, "max_retry_after": 1, "max_host_pause": 30,
                               "delay": 0.05})
    summary = crawl(prof, tmp_path / "cat", progress=False)
    assert summary.done == 5
    tries = [h.at for h in cdn.log if h.path == "/a.png"]
    assert len(tries) == 2 and tries[1] - tries[0] >= 2.0  # the host waited Retry-After
    home = [h.at for h in shop.log if h.path.startswith("/h")]
    assert min(home) < tries[1]  # ... while the other host went on
    assert summary.requests == len(cdn.log) + len(shop.log)


def test_autothrottle_raises_the_delay_towards_the_response_time(servers) -> None:
    shop = servers({"/robots.txt": Reply(404), "/slow": Reply(body=b"x" * 4, drip=0.05)})
    session = PoliteSession(Politeness(delay=0, autothrottle=True, max_delay=5))
    try:
        for _ in range(3):
            session.get(shop.base + "/slow", 1000)
        assert session.delay_for(shop.base + "/slow") >= 0.1
    finally:
        session.close()


# --- staying on the shop ------------------------------------------------------------------

def test_redirects_and_links_to_other_hosts_are_not_followed(servers, tmp_path) -> None:
    elsewhere = servers({"/robots.txt": Reply(404),
                         "/x.png": Reply(body=png((7, 7, 7)), ctype="image/png")})
    shop = servers({"/robots.txt": Reply(404),
                    "/list": listing(("MOVED", "/moved.png"), ("LINK", elsewhere.base + "/x.png"),
                                     ("OK", "/ok.png")),
                    "/moved.png": Reply(302, headers={"Location": elsewhere.base + "/x.png"}),
                    "/ok.png": Reply(body=png((8, 8, 8)), ctype="image/png")})
    summary = crawl(profile(shop.base + "/list"), tmp_path / "cat", progress=False)
    assert elsewhere.log == []  # not even its robots.txt
    assert set(rows(tmp_path / "cat")) == {"OK"}
    reasons = " | ".join(reason for reason, _, _ in summary.skipped)
    assert "off-site" in reasons and "allowed_hosts" in reasons and "redirect to" in reasons
    # the profile may name more hosts
    summary = crawl(profile(shop.base + "/list", allowed_hosts=[elsewhere.netloc]),
                    tmp_path / "cat2", progress=False)
    assert set(rows(tmp_path / "cat2")) == {"OK", "MOVED", "LINK"}


def test_allowed_hosts_defaults_and_forms() -> None:
    prof = parse_profile({"start_urls": ["https://shop.example/list"],
                          "image_hosts": ["cdn.example:8443", "*.img.example"]}, "p.toml")
    from scraper.profile import host_allowed
    ok = prof.allowed_hosts
    assert host_allowed("http://shop.example/x", ok)  # http -> https of the same host
    assert host_allowed("https://www.shop.example/x", ok)  # the www twin
    assert not host_allowed("https://shop.example:8080/x", ok)  # another port
    assert host_allowed("https://cdn.example:8443/i.jpg", ok)
    assert host_allowed("https://a.img.example/i.jpg", ok)
    assert not host_allowed("https://evil.example/i.jpg", ok)
    assert not host_allowed("https://shop.example.evil.example/", ok)


# --- hosts in parallel ------------------------------------------------------------------

def test_pages_and_images_on_different_hosts_are_fetched_concurrently(servers,
                                                                      tmp_path) -> None:
    delay = 0.15
    cdn = servers({"/robots.txt": Reply(404),
                   **{f"/{n}.png": Reply(body=png((n, 9, 9)), ctype="image/png")
                      for n in range(6)}})
    shop = servers({"/robots.txt": Reply(404),
                    "/list": Reply(body="".join(
                        f'<li class="c" data-sku="P{n}"><a href="/p/{n}.html">x</a></li>'
                        for n in range(6)).encode()),
                    **{f"/p/{n}.html": Reply(body=(
                        f'<script type="application/ld+json">{{"@type": "Product", '
                        f'"name": "P{n}", "image": "{cdn.base}/{n}.png"}}</script>').encode())
                       for n in range(6)}})
    prof = profile(shop.base + "/list", image_hosts=[cdn.netloc],
                   product_page={"fetch": True}, politeness={"delay": delay})
    summary = crawl(prof, tmp_path / "cat", progress=False)
    assert summary.done == 6
    for server in (shop, cdn):  # each host: one at a time, never closer than the delay
        arrivals = sorted(h.at for h in server.log)
        assert min(b - a for a, b in pairwise(arrivals)) >= delay
    # the image host worked while the shop's pages were still being fetched
    pages = [h.at for h in shop.log if h.path.startswith("/p/")]
    images = [h.at for h in cdn.log if h.path.endswith(".png")]
    assert min(images) < max(pages)


# --- one crawl per folder ----------------------------------------------------------------

def test_a_second_crawl_into_the_same_folder_stops_with_a_clear_message(tmp_path) -> None:
    held = FolderLock(tmp_path / "cat")
    try:
        with pytest.raises(ScraperError, match="being written by another crawl"):
            crawl(profile("http://127.0.0.1:9/list"), tmp_path / "cat", progress=False)
    finally:
        held.release()


def test_a_killed_crawl_leaves_no_stuck_lock(tmp_path) -> None:
    code = ("import time\nfrom pathlib import Path\nfrom scraper.lock import FolderLock\n"
            f"FolderLock(Path({str(tmp_path / 'cat')!r}))\nprint('locked', flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(ScraperError, match=f"pid {proc.pid}"):
            FolderLock(tmp_path / "cat")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        FolderLock(tmp_path / "cat").release()  # free again, though the file stays
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_import_waits_for_no_crawl_either(tmp_path) -> None:
    from scraper.local_import import import_folder

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(png((1, 2, 3)))
    held = FolderLock(tmp_path / "cat")
    try:
        with pytest.raises(ScraperError, match="being written by another crawl or import"):
            import_folder(tmp_path / "photos", tmp_path / "cat")
    finally:
        held.release()
    assert import_folder(tmp_path / "photos", tmp_path / "cat").rows == 1
