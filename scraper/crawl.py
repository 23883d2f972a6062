"""The crawl: listing pages -> product records -> (product pages) -> validated images ->
catalog folder. Network through :class:`~scraper.fetch.PoliteSession`, state in the
:class:`~scraper.manifest.Manifest`, so the same command resumes after any crash.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from scraper import ScraperError
from scraper.catalog import write_catalog
from scraper.fetch import FetchError, PoliteSession
from scraper.images import ImageError, check_content_type, check_image, store_image
from scraper.manifest import Manifest
from scraper.parse import ProductRecord, catalog_id, parse_listing, parse_product_page
from scraper.profile import Profile

HTML_TYPES = ("text/html", "application/xhtml+xml", "")
MAX_HTML_BYTES = 5_000_000
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
ACCEPT_IMAGE = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
CATALOG_EVERY_S = 30.0


@dataclass
class CrawlSummary:
    """What a crawl run did; ``lines()`` is the end-of-run report."""

    name: str
    out: Path
    pages_fetched: int = 0
    products_found: int = 0
    new_products: int = 0
    done: int = 0
    images_saved: int = 0
    shared_images: int = 0
    requests: int = 0
    page_problems: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    page_cap_hit: bool = False

    @property
    def n_skipped(self) -> int:
        """Products skipped, all reasons."""
        return sum(n for _, n, _ in self.skipped)

    @property
    def n_failed(self) -> int:
        """Products failed, all reasons."""
        return sum(n for _, n, _ in self.failed)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"crawl {self.name}: {self.products_found} products found "
            f"({self.new_products} new), {self.done} in catalog, "
            f"{self.images_saved} images saved this run"
            + (f" ({self.shared_images} reused a byte-identical image)"
               if self.shared_images else "")
            + f", {self.n_skipped} skipped, {self.n_failed} failed; "
            f"{self.pages_fetched} listing pages fetched, {self.requests} requests",
        ]
        for label, groups in (("skipped", self.skipped), ("failed", self.failed)):
            for reason, n, example in groups:
                out.append(f"  {label} {n}: {reason}  (e.g. {example})")
        for url, reason in self.page_problems:
            out.append(f"  listing page {url}: {reason}")
        if self.page_cap_hit:
            out.append("  stopped following listing pages at max_pages")
        if self.n_failed or self.page_problems:
            out.append("  run the same command again to retry what failed")
        out.append(f"catalog: {self.out / 'catalog.csv'} ({self.done} rows)")
        return out


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


class Crawler:
    """One crawl of one profile into one catalog folder."""

    def __init__(self, profile: Profile, out: Path, refresh: bool = False,
                 progress: bool | None = None,
                 say: Callable[[str], None] = _say) -> None:
        self.profile = profile
        self.out = Path(out)
        self.refresh = refresh
        self.progress = progress
        self.say = say
        self.session = PoliteSession(profile.politeness)
        self.manifest = Manifest(self.out / "manifest.sqlite")
        owner = self.manifest.get_meta("profile")
        if owner is None:
            self.manifest.set_meta("profile", profile.name)
        elif owner != profile.name:
            self.manifest.close()
            raise ScraperError(f"{self.out} holds a crawl of profile '{owner}', not "
                               f"'{profile.name}'; choose another --out")
        # Temporary files of a killed run: never referenced by the manifest, safe to drop.
        for leftover in (self.out / "images").glob(".*.part"):
            leftover.unlink(missing_ok=True)
        self.summary = CrawlSummary(profile.name, self.out)
        self._last_catalog = time.monotonic()

    def close(self) -> None:
        """Release the session and the manifest."""
        self.session.close()
        self.manifest.close()

    # listing pages ---------------------------------------------------------------------
    def crawl_listings(self) -> None:
        """Walk the listing pages (finished ones from the manifest unless --refresh)."""
        queue = deque(self.profile.listing_urls())
        seen: set[str] = set()
        cap = self.profile.politeness.max_pages
        bar = tqdm(desc="listing pages", unit="page", disable=self._no_bar(), leave=False)
        try:
            while queue:
                url = queue.popleft()
                if url in seen:
                    continue
                seen.add(url)
                state = self.manifest.page(url)
                if state is not None and state[0] == "done" and not self.refresh:
                    if state[2]:
                        queue.append(state[2])
                    continue
                if self.summary.pages_fetched >= cap:
                    self.summary.page_cap_hit = True
                    break
                self.summary.pages_fetched += 1
                bar.update(1)
                next_url = self._crawl_listing(url)
                if next_url:
                    queue.append(next_url)
        finally:
            bar.close()

    def _crawl_listing(self, url: str) -> str | None:
        try:
            resp = self.session.get(url, MAX_HTML_BYTES, ACCEPT_HTML)
            if resp.content_type not in HTML_TYPES:
                raise FetchError(f"not an HTML page (Content-Type {resp.content_type})")
        except FetchError as exc:
            self.manifest.record_listing(url, exc.kind, exc.reason, None, [], self.refresh)
            self.say(f"listing page {url}: {exc.reason}; continuing")
            return None
        page = parse_listing(resp.body, resp.url, self.profile)
        error = None
        if not page.products:
            how = (f"card selector {self.profile.card!r} matched nothing" if self.profile.card
                   else "no JSON-LD Product, product link or OpenGraph image found")
            error = f"no products found ({how})"
            self.say(f"listing page {url}: {error}; continuing")
        records = [{"key": r.key(), "record": r.to_json()} for r in page.products]
        self.summary.new_products += self.manifest.record_listing(
            url, "done" if page.products else "empty", error, page.next_url, records,
            self.refresh)
        return page.next_url

    # products --------------------------------------------------------------------------
    def crawl_products(self) -> None:
        """Fetch every pending or failed product's page (if configured) and image."""
        todo = self.manifest.todo()
        for key, data in tqdm(todo, desc="products", unit="product", disable=self._no_bar()):
            self._crawl_product(key, ProductRecord.from_json(data))
            if time.monotonic() - self._last_catalog > CATALOG_EVERY_S:
                self.write_catalog()

    def _crawl_product(self, key: str, rec: ProductRecord) -> None:
        stage = "product page"
        pid = None
        try:
            if self.profile.fetch_product_page and rec.product_url:
                resp = self.session.get(rec.product_url, MAX_HTML_BYTES, ACCEPT_HTML)
                if resp.content_type not in HTML_TYPES:
                    raise FetchError(f"not an HTML page (Content-Type {resp.content_type})")
                rec = rec.merged_with(parse_product_page(resp.body, resp.url, self.profile))
            stage = "image"
            if not rec.image_url:
                raise FetchError("no image URL found on the listing or product page", "skipped")
            pid = catalog_id(rec)
            if pid is None:
                raise FetchError("no usable product id (no sku, id selector or URL slug)",
                                 "skipped")
            owner = self.manifest.id_owner(pid, key)
            if owner is not None:
                raise FetchError(f"duplicate id {pid} (already used by {owner})", "skipped")
            resp = self.session.get(rec.image_url, self.profile.politeness.max_image_bytes,
                                    ACCEPT_IMAGE)
            check_content_type(resp.content_type)
            image = check_image(resp.body)
            rec.image_url = resp.url  # after redirects: where the bytes really came from
        except FetchError as exc:
            self._record_problem(key, exc.kind, f"{stage}: {exc.reason}", pid)
            return
        except ImageError as exc:
            self._record_problem(key, "failed", f"{stage}: {exc}", pid)
            return
        existing = self.manifest.image_path(image.sha256)
        rel = store_image(self.out, pid, image, existing)
        if existing:
            self.summary.shared_images += 1
        else:
            self.summary.images_saved += 1
        row = {"id": pid, "image": rel, "title": rec.title, "price": rec.price,
               "currency": rec.currency, "product_url": rec.product_url,
               "image_url": rec.image_url, "sha256": image.sha256, **rec.attrs}
        self.manifest.finish(key, "done", None, pid, row, (image.sha256, rel, rec.image_url),
                             rec.image_url)

    def _record_problem(self, key: str, kind: str, reason: str, pid: str | None) -> None:
        self.manifest.finish(key, kind, reason, pid)
        self.say(f"{kind}: {key.removeprefix('image:')}: {reason}")

    # whole run -------------------------------------------------------------------------
    def write_catalog(self) -> Path:
        """Rewrite catalog.csv from the manifest's finished rows."""
        self._last_catalog = time.monotonic()
        return write_catalog(self.out, self.manifest.rows())

    def run(self) -> CrawlSummary:
        """Listings, then products, then catalog.csv and the summary."""
        try:
            self.crawl_listings()
            self.crawl_products()
        finally:
            self.write_catalog()
        s = self.summary
        counts = self.manifest.counts()
        s.products_found = sum(counts.values())
        s.done = counts.get("done", 0)
        s.skipped = self.manifest.reasons("skipped")
        s.failed = self.manifest.reasons("failed")
        s.page_problems = self.manifest.failed_pages()
        s.requests = self.session.requests_sent
        return s

    def _no_bar(self) -> bool | None:
        return None if self.progress is None else not self.progress


def crawl(profile: Profile, out: str | Path, refresh: bool = False,
          progress: bool | None = None) -> CrawlSummary:
    """Crawl ``profile`` into the catalog folder ``out`` (resuming what is there)."""
    crawler = Crawler(profile, Path(out), refresh=refresh, progress=progress)
    try:
        return crawler.run()
    finally:
        crawler.close()
