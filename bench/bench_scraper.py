"""Scraper speed and politeness on the demo shop (loopback only).

1. Throughput with the delay set to 0: our crawler (robots.txt, validation, manifest,
   atomic writes) against the naive way measured in the same run, a plain sequential
   ``requests.get`` loop over the same listing pages, product pages and images.
2. Politeness with a configured delay: the gaps between request arrivals as the server
   saw them, and the highest request rate over any window, against the limit.

Run: ``.venv/bin/python bench/bench_scraper.py`` (about half a minute, plus drawing the
photos once).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import requests
from bs4 import BeautifulSoup

from scraper.crawl import crawl
from scraper.demo_shop.server import DemoShopServer, start_server
from scraper.profile import load_profile, parse_profile


def naive_crawl(base: str, out: Path) -> tuple[int, int]:
    """The tutorial way: requests.get in a loop, no session, no checks. (pages, images)"""
    out.mkdir(parents=True, exist_ok=True)
    pages = images = 0
    url: str | None = f"{base}/shop/page/1.html"
    while url:
        soup = BeautifulSoup(requests.get(url, timeout=20).text, "html.parser")
        pages += 1
        for card in soup.select("li.product-card"):
            link = requests.compat.urljoin(url, card.select_one("a.product-link")["href"])
            if "/members/" in link:  # even the naive loop must not fetch these
                continue
            page = BeautifulSoup(requests.get(link, timeout=20).text, "html.parser")
            pages += 1
            data = json.loads(page.find("script", type="application/ld+json").string)
            img = requests.get(data["image"][0], timeout=20).content
            (out / f"{card['data-sku']}.jpg").write_bytes(img)
            images += 1
        nxt = soup.select_one("nav.pagination a.next")
        url = requests.compat.urljoin(url, nxt["href"]) if nxt else None
    return pages, images


def ours(base: str, out: Path, delay: float = 0.0) -> tuple[int, int]:
    """The scraper with the bundled demo profile. (pages, images)"""
    profile = load_profile("demo", base_url=base)
    profile = replace(profile, politeness=replace(profile.politeness, delay=delay))
    summary = crawl(profile, out, progress=False)
    product_pages = summary.done + summary.n_skipped + summary.n_failed
    return summary.pages_fetched + product_pages, summary.done


def rate_report(server: DemoShopServer, delay: float) -> str:
    """Min gap and max requests in any window of `delay` seconds, from server timestamps."""
    arrivals = sorted(r.at for r in server.request_log)
    gaps = [b - a for a, b in pairwise(arrivals)]
    span = arrivals[-1] - arrivals[0]
    # most requests that started within any half-open window of length `delay`
    most = max(sum(1 for t in arrivals[i:] if t - a < delay) for i, a in enumerate(arrivals))
    return (f"{len(arrivals)} requests over {span:.2f} s: mean {(len(arrivals) - 1) / span:.2f} "
            f"req/s (limit {1 / delay:.2f}), min gap {min(gaps):.3f} s >= {delay} s: "
            f"{min(gaps) >= delay}; most requests in any {delay} s window: {most}")


def main() -> None:
    server = start_server()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scraper-"))
    try:
        t = time.perf_counter()
        for p in server.products:  # draw every photo once, so both loops measure crawling
            server.photo(p.image_sku, 512)
        print(f"demo shop at {server.base_url}: {len(server.products)} products, photos "
              f"drawn in {time.perf_counter() - t:.1f} s (not counted below)")

        print("\n1. throughput, delay 0, loopback (best of 2 runs each, alternating)")
        best: dict[str, tuple[float, int, int]] = {}
        for run in range(2):
            for name, fn in (("naive requests loop", naive_crawl), ("lookalike scraper", ours)):
                out = tmp / f"{name[:5]}-{run}"
                t = time.perf_counter()
                pages, images = fn(server.base_url, out)
                dt = time.perf_counter() - t
                if name not in best or dt < best[name][0]:
                    best[name] = (dt, pages, images)
        for name, (dt, pages, images) in best.items():
            print(f"  {name:20s} {dt:6.2f} s  {pages / dt:7.1f} pages/s  {images / dt:7.1f} "
                  f"images/s  ({pages} pages, {images} images)")
        ratio = best["naive requests loop"][0] / best["lookalike scraper"][0]
        print(f"  ratio scraper/naive (speed): {ratio:.2f}x  — same pages and images; the "
              "scraper also reads robots.txt, decodes every image twice (verify + load), "
              "hashes it and commits the manifest per product")

        print("\n2. politeness, measured on the server side")
        server.reset()
        delay = 0.2
        prof = load_profile("demo", base_url=server.base_url)
        prof = replace(prof, politeness=replace(prof.politeness, delay=delay, max_pages=1))
        crawl(prof, tmp / "polite", progress=False)
        print(f"  delay {delay} s (1 listing page + its products): "
              + rate_report(server, delay))

        server.reset()
        few = parse_profile({
            "name": "few", "start_urls": [f"{server.base_url}/shop/page/2.html"],
            "listing": {"card": "li.product-card:nth-of-type(-n+4)", "id": {"attr": "data-sku"}},
        }, "few.toml")  # default politeness: 1 s
        crawl(few, tmp / "few", progress=False)
        print("  default delay 1 s (robots.txt, 1 listing page, 4 images): "
              + rate_report(server, few.politeness.delay))
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
