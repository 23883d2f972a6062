"""Pages and images on different hosts, fetched in parallel (issue 11, item 9).

Two demo shops on loopback: one serves the listing and product pages, the other the
images (a CDN). Each host keeps its own one-at-a-time limit and delay. The same crawl
runs with 1 worker (the sequential way: each product waits for its page, then its
image) and with the default workers; the ratio is measured in the same run. Expected:
about the time of the slower host, not the sum of both.

Run: ``.venv/bin/python bench/bench_scraper_hosts.py`` (about a minute).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_first_paint import cpu_line

from scraper.crawl import crawl
from scraper.demo_shop.server import start_server
from scraper.profile import load_profile

# A host's throughput is 1 / (latency + delay): the delay runs from the end of the previous
# response. Sequentially each product costs both latencies; in parallel, the slower host's.
DELAY = 0.01
LATENCY = 0.06
PAGES = 2  # listing pages: 48 products, 48 product pages, 48 images


def run(workers: int, tmp: Path, pages_base: str) -> tuple[float, int]:
    prof = load_profile("demo", base_url=pages_base)
    prof = replace(prof, politeness=replace(prof.politeness, delay=DELAY, workers=workers,
                                            max_pages=PAGES),
                   allowed_hosts=(*prof.allowed_hosts, IMAGE_HOST))  # + the image server
    out = tmp / f"w{workers}"
    t = time.perf_counter()
    summary = crawl(prof, out, progress=False)
    return time.perf_counter() - t, summary.done


def main() -> None:
    global IMAGE_HOST
    images = start_server(latency=LATENCY)
    pages = start_server(latency=LATENCY, image_base=images.base_url)
    IMAGE_HOST = images.base_url.split("//")[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    try:
        for p in images.products:  # draw the photos once, outside the timings
            images.photo(p.image_sku, 512)
        print(cpu_line())
        print(f"{PAGES} listing pages, delay {DELAY} s and {LATENCY} s latency per request "
              "on each host")
        results = {}
        for workers in (1, 4, 1, 4):  # alternate, keep the best of two
            dt, done = run(workers, tmp, pages.base_url)
            shutil.rmtree(tmp / f"w{workers}")
            results[workers] = min(results.get(workers, (dt, done)), (dt, done))
        page_reqs = sum(1 for r in pages.request_log) // 4
        image_reqs = sum(1 for r in images.request_log) // 4
        per_request = DELAY + LATENCY
        print(f"  requests per crawl: {page_reqs} to the page host, {image_reqs} to the image"
              f" host; one host alone at {per_request:.2f} s a request: "
              f"{max(page_reqs, image_reqs) * per_request:.1f} s; one after the other: "
              f"{(page_reqs + image_reqs) * LATENCY:.1f} s of latency")
        for workers, (dt, done) in sorted(results.items()):
            print(f"  {workers} worker{'s' if workers > 1 else ''}: {dt:6.2f} s "
                  f"({done} products in catalog)")
        print(f"  ratio sequential/parallel: {results[1][0] / results[4][0]:.2f}x")
    finally:
        for server in (pages, images):
            server.shutdown()
            server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


IMAGE_HOST = ""

if __name__ == "__main__":
    main()
