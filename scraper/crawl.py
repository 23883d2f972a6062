"""The crawl: listing pages (HTML, rendered in a browser, or a JSON feed) -> product
records -> (product pages) -> validated images -> catalog folder. Network through
:class:`~scraper.fetch.PoliteSession`, state in the :class:`~scraper.manifest.Manifest`,
so the same command resumes after any crash.

Products are fetched by a few worker threads: the session keeps each host to one request
at a time, so pages on the shop and images on a CDN are fetched side by side. Results are
committed by the main thread in discovery order, so a run's outcome does not depend on
which thread was faster.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from scraper import ScraperError
from scraper.catalog import write_catalog
from scraper.fetch import FetchError, PoliteSession
from scraper.images import CheckedImage, ImageError, check_content_type, check_image, store_image
from scraper.lock import FolderLock
from scraper.manifest import Manifest
from scraper.parse import (
    FeedError,
    ListingPage,
    ProductRecord,
    catalog_id,
    parse_feed,
    parse_listing,
    parse_product_page,
)
from scraper.profile import Profile

HTML_TYPES = ("text/html", "application/xhtml+xml", "")
MAX_HTML_BYTES = 5_000_000
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
ACCEPT_IMAGE = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
ACCEPT_JSON = "application/json,text/json;q=0.9,*/*;q=0.5"
MAX_FEED_BYTES = 20_000_000
CATALOG_EVERY_S = 30.0
SHARED_IMAGE_FLAG = 3  # this many products with one photo: likely a logo or placeholder


@dataclass
class _Outcome:
    """What a worker found for one product: a checked image, or why not."""

    rec: ProductRecord
    pid: str | None = None
    image: CheckedImage | None = None
    kind: str = "done"
    reason: str | None = None


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
    deferred: list[tuple[str, int, str]] = field(default_factory=list)
    host_problems: list[tuple[str, str]] = field(default_factory=list)
    shared: list[tuple[int, str, str]] = field(default_factory=list)

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
        for origin, reason in self.host_problems:
            out.append(f"  host {origin}: {reason}")
        for label, groups in (("skipped", self.skipped), ("failed", self.failed),
                              ("left pending", self.deferred)):
            for reason, n, example in groups:
                out.append(f"  {label} {n}: {reason}  (e.g. {example})")
        for n, path, url in self.shared:
            out.append(f"  one image for {n} products: {path} ({url}); a logo or placeholder "
                       "is not a product photo, check the profile's image selector")
        for url, reason in self.page_problems:
            out.append(f"  listing page {url}: {reason}")
        if self.page_cap_hit:
            out.append("  stopped following listing pages at max_pages")
        if self.n_failed or self.page_problems or self.deferred:
            out.append("  run the same command again to retry what failed or was left pending")
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
        self.lock = FolderLock(self.out, f"crawl of profile {profile.name}")
        try:
            self.manifest = Manifest(self.out / "manifest.sqlite")
        except BaseException:
            self.lock.release()
            raise
        owner = self.manifest.get_meta("profile")
        if owner is None:
            self.manifest.set_meta("profile", profile.name)
        elif owner != profile.name:
            self.manifest.close()
            self.lock.release()
            raise ScraperError(f"{self.out} holds a crawl of profile '{owner}', not "
                               f"'{profile.name}'; choose another --out")
        self.session = PoliteSession(profile.politeness, profile.allowed_hosts)
        self.browser = None  # a scraper.browser.Browser, started on first use
        self._browser_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._done_ids: dict[str, str] = {}
        # Temporary files of a killed run: never referenced by the manifest, safe to drop.
        for leftover in (self.out / "images").glob(".*.part"):
            leftover.unlink(missing_ok=True)
        self.summary = CrawlSummary(profile.name, self.out)
        self._last_catalog = time.monotonic()

    def close(self) -> None:
        """Release the browser, the session, the manifest and the folder's lock."""
        try:
            if self.browser is not None:
                self.browser.close()
            self.session.close()
            self.manifest.close()
        finally:
            self.lock.release()

    def _browser(self):  # -> scraper.browser.Browser (imported only when a profile asks)
        if self.browser is None:
            from scraper.browser import Browser

            assert self.profile.browser is not None
            self.browser = Browser(self.profile.browser, self.profile.politeness,
                                   self.session)
        return self.browser

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

    def _fetch_listing(self, url: str) -> ListingPage:
        """One listing page: a JSON feed page, a page rendered in the browser, or HTML."""
        if self.profile.feed is not None:
            resp = self.session.get(url, MAX_FEED_BYTES, ACCEPT_JSON)
            return parse_feed(resp.body, url, self.profile, resp.next_link)
        if self.profile.browser is not None and self.profile.browser.listing:
            with self._browser_lock:
                html, final_url = self._browser().render_listing(url)
            return parse_listing(html, final_url, self.profile)
        resp = self.session.get(url, MAX_HTML_BYTES, ACCEPT_HTML)
        if resp.content_type not in HTML_TYPES:
            raise FetchError(f"not an HTML page (Content-Type {resp.content_type})")
        return parse_listing(resp.body, resp.url, self.profile)

    def _crawl_listing(self, url: str) -> str | None:
        try:
            page = self._fetch_listing(url)
        except FetchError as exc:
            self.manifest.record_listing(url, exc.kind, exc.reason, None, [], self.refresh)
            self.say(f"listing page {url}: {exc.reason}; continuing")
            return None
        except FeedError as exc:
            self.manifest.record_listing(url, "failed", str(exc), None, [], self.refresh)
            self.say(f"listing page {url}: {exc}; continuing")
            return None
        next_url = page.next_url
        if next_url:
            try:
                self.session.check_on_site(next_url)
            except FetchError as exc:
                self.say(f"listing page {url}: next page {next_url}: {exc.reason}")
                next_url = None
        status, error = "done", None
        if not page.products and self.profile.feed is not None:
            status = "end"  # a feed ends with an empty page: fetched again next run
        elif not page.products:
            how = (f"card selector {self.profile.card!r} matched nothing" if self.profile.card
                   else "no structured-data Product, product link or OpenGraph image found")
            status, error = "empty", f"no products found ({how})"
            self.say(f"listing page {url}: {error}; continuing")
        records = [{"key": r.key(), "record": r.to_json()} for r in page.products]
        self.summary.new_products += self.manifest.record_listing(
            url, status, error, next_url, records, self.refresh)
        return next_url

    # products --------------------------------------------------------------------------
    def crawl_products(self) -> None:
        """Fetch every pending or failed product's page (if configured) and image: workers
        fetch, the main thread commits in discovery order."""
        todo = self.manifest.todo()
        self._done_ids = self.manifest.done_ids()
        workers = max(1, self.profile.politeness.workers)
        window = 4 * workers  # products in flight: enough to keep every host busy
        bar = tqdm(total=len(todo), desc="products", unit="product", disable=self._no_bar())
        pending: deque[tuple[str, Future[_Outcome]]] = deque()
        items = iter(todo)
        with ThreadPoolExecutor(workers, thread_name_prefix="crawl") as pool:
            try:
                while True:
                    while len(pending) < window:
                        item = next(items, None)
                        if item is None:
                            break
                        key, data = item
                        rec = ProductRecord.from_json(data)
                        pending.append((key, pool.submit(self._fetch_product, key, rec)))
                    if not pending:
                        break
                    key, future = pending.popleft()
                    self._commit(key, future.result())
                    bar.update(1)
                    if time.monotonic() - self._last_catalog > CATALOG_EVERY_S:
                        self.write_catalog()
            finally:
                for _, future in pending:
                    future.cancel()
                bar.close()

    def _product_page(self, url: str) -> tuple[bytes | str, str]:
        """A product page's HTML and final URL (rendered when the profile says so)."""
        if self.profile.browser is not None and self.profile.browser.product_page:
            with self._browser_lock:
                return self._browser().render_page(url)
        resp = self.session.get(url, MAX_HTML_BYTES, ACCEPT_HTML)
        if resp.content_type not in HTML_TYPES:
            raise FetchError(f"not an HTML page (Content-Type {resp.content_type})")
        return resp.body, resp.url

    def _fetch_product(self, key: str, rec: ProductRecord) -> _Outcome:
        """Product page (if configured), id, image: network only (runs in a worker)."""
        stage = "product page"
        pid = None
        try:
            if self.profile.fetch_product_page and rec.product_url:
                html, url = self._product_page(rec.product_url)
                rec = rec.merged_with(parse_product_page(html, url, self.profile))
            stage = "image"
            if not rec.image_url:
                raise FetchError("no image URL found on the listing or product page", "skipped")
            pid = catalog_id(rec)
            if pid is None:
                raise FetchError("no usable product id (no sku, id selector or URL slug)",
                                 "skipped")
            with self._ids_lock:
                owner = self._done_ids.get(pid)
            if owner is not None and owner != key:
                raise FetchError(f"duplicate id {pid} (already used by {owner})", "skipped")
            resp = self.session.get(rec.image_url, self.profile.politeness.max_image_bytes,
                                    ACCEPT_IMAGE)
            check_content_type(resp.content_type)
            image = check_image(resp.body)
            rec.image_url = resp.url  # after redirects: where the bytes really came from
        except FetchError as exc:
            return _Outcome(rec, pid, None, exc.kind, f"{stage}: {exc.reason}")
        except ImageError as exc:
            return _Outcome(rec, pid, None, "failed", f"{stage}: {exc}")
        except ScraperError:
            raise
        except Exception as exc:  # a bug or an odd page must not end the whole run
            return _Outcome(rec, pid, None, "failed",
                            f"{stage}: {type(exc).__name__}: {str(exc)[:200]}")
        return _Outcome(rec, pid, image)

    def _commit(self, key: str, out: _Outcome) -> None:
        """Record one product's outcome (main thread, discovery order)."""
        if out.image is None:
            self._record_problem(key, out.kind, out.reason or "unknown problem", out.pid)
            return
        rec, pid, image = out.rec, out.pid, out.image
        assert pid is not None
        owner = self.manifest.id_owner(pid, key)
        if owner is not None:
            self._record_problem(key, "skipped",
                                 f"image: duplicate id {pid} (already used by {owner})", pid)
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
        with self._ids_lock:
            self._done_ids[pid] = key

    def _record_problem(self, key: str, kind: str, reason: str, pid: str | None) -> None:
        status = "pending" if kind == "deferred" else kind
        self.manifest.finish(key, status, reason, pid)
        if kind != "deferred":  # one line per host in the summary instead of per product
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
        s.deferred = self.manifest.reasons("pending")
        s.page_problems = self.manifest.failed_pages()
        s.host_problems = self.session.host_problems()
        s.shared = self._shared_images()
        s.requests = self.session.requests_sent  # retries, redirects, robots.txt, browser
        return s

    def _shared_images(self) -> list[tuple[int, str, str]]:
        """(products, file, image URL) for images that many products point at."""
        rows = self.manifest.rows()
        counts = Counter(r["image"] for r in rows)
        first = {}
        for r in rows:
            first.setdefault(r["image"], r.get("image_url") or "")
        return sorted(((n, path, first[path]) for path, n in counts.items()
                       if n >= SHARED_IMAGE_FLAG), key=lambda t: (-t[0], t[1]))

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
