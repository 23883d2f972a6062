"""Pages that a shop builds in the browser: headless system Chromium driven by Selenium.

Only the profile's ``[browser]`` pages go through here (listing pages, optionally product
pages); images are still fetched and validated by the polite HTTP session. Every
navigation obeys the allowed hosts, robots.txt, the host's turn and delay and the
User-Agent with contact (:meth:`~scraper.fetch.PoliteSession.navigate`); each scroll or
"load more" click that makes the page ask the shop for more waits the host's delay too.
The browser loads no images (the session fetches the ones the crawl needs).

Works with Selenium 3.141 (what ``dash[testing]`` pins in ``.[dev]``) and 4.x; uses the
``chromium`` and ``chromedriver`` on the PATH (Debian: ``chromium``,
``chromium-driver``) or the profile's paths, and never downloads a browser.
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import time
from typing import Any

from scraper import ScraperError
from scraper.fetch import FetchError, PoliteSession
from scraper.profile import BrowserSpec, Politeness

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
POLL_S = 0.1
# Short pages fire no scroll event when scrolled; a synthetic one wakes scroll listeners.
SCROLL_JS = ("window.scrollTo(0, Math.max(document.body.scrollHeight, "
             "document.documentElement.scrollHeight));"
             "window.dispatchEvent(new Event('scroll'));")
STATUS_JS = ("const e = performance.getEntriesByType('navigation')[0];"
             "return e && e.responseStatus ? e.responseStatus : 0;")


def find_binaries(spec: BrowserSpec) -> tuple[str, str]:
    """(chromium, chromedriver) paths, or a one-line error saying what to install."""
    chromium = spec.chromium or next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if chromium is None or shutil.which(chromium) is None:
        raise ScraperError("the browser crawl needs Chromium: apt-get install chromium "
                           "chromium-driver (or set browser.chromium to its path)")
    driver = spec.chromedriver or shutil.which("chromedriver")
    if driver is None or shutil.which(driver) is None:
        raise ScraperError("the browser crawl needs chromedriver: apt-get install "
                           "chromium-driver (or set browser.chromedriver to its path)")
    return chromium, driver


def chrome_options(chromium: str, pol: Politeness) -> Any:
    """Headless, quiet Chromium options with our User-Agent and no images."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-default-apps",
                "--no-first-run", "--no-default-browser-check", "--mute-audio",
                "--blink-settings=imagesEnabled=false", "--window-size=1280,900",
                f"--user-agent={pol.user_agent_header()}"):
        options.add_argument(arg)
    return options


class Browser:
    """One headless Chromium for a crawl; not thread-safe (the crawler holds a lock)."""

    def __init__(self, spec: BrowserSpec, pol: Politeness, session: PoliteSession) -> None:
        try:
            from selenium import webdriver
            from selenium.common.exceptions import WebDriverException
            from selenium.webdriver.remote.remote_connection import RemoteConnection
        except ImportError:
            raise ScraperError("the browser crawl needs selenium: pip install -e "
                               "'.[browser]'") from None
        chromium, driver_path = find_binaries(spec)
        self.spec, self.pol, self.session = spec, pol, session
        # selenium 3.141 passes urllib3 a sentinel timeout that urllib3 2 refuses
        if hasattr(RemoteConnection, "get_timeout") and RemoteConnection.get_timeout() is None:
            RemoteConnection.set_timeout(max(60.0, pol.max_download_seconds))
        options = chrome_options(chromium, pol)
        try:
            if "service" in inspect.signature(webdriver.Chrome.__init__).parameters:
                from selenium.webdriver.chrome.service import Service

                self.driver = webdriver.Chrome(service=Service(driver_path), options=options)
            else:  # selenium 3
                self.driver = webdriver.Chrome(executable_path=driver_path, options=options)
        except WebDriverException as exc:
            first = (exc.msg or str(exc)).strip().splitlines()[0][:200]
            raise ScraperError(f"cannot start Chromium ({chromium}, {driver_path}): "
                               f"{first}") from None
        self.driver.set_page_load_timeout(pol.max_download_seconds)
        self.scrolls = 0

    def close(self) -> None:
        """Quit the browser."""
        with contextlib.suppress(Exception):  # the browser may already be gone
            self.driver.quit()

    def _count(self, selector: str) -> int:
        from selenium.webdriver.common.by import By

        return len(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def _wait_for_more(self, selector: str, than: int, seconds: float) -> int:
        """Poll until more than ``than`` elements match (or ``seconds`` pass)."""
        end = time.monotonic() + seconds
        count = self._count(selector)
        while count <= than and time.monotonic() < end:
            time.sleep(POLL_S)
            count = self._count(selector)
        return count

    def _open(self, url: str) -> str:
        """Navigate politely; the final URL after redirects (checked like a request)."""
        from selenium.common.exceptions import TimeoutException, WebDriverException

        def go() -> None:
            try:
                self.driver.get(url)
            except TimeoutException:
                raise FetchError(f"timed out: page not loaded within "
                                 f"{self.pol.max_download_seconds:g} s (browser)") from None
            except WebDriverException as exc:
                first = (exc.msg or str(exc)).strip().splitlines()[0][:160]
                raise FetchError(f"browser could not load the page: {first}") from None

        self.session.navigate(url, go)
        final = self.driver.current_url
        if final != url:
            self.session.check_on_site(final)
            if not self.session.allowed(final):
                raise FetchError(f"disallowed by robots.txt: {final}", "skipped")
        status = self.driver.execute_script(STATUS_JS) or 0
        if status >= 400:
            raise FetchError(f"HTTP {status}")
        return final

    def render_listing(self, url: str) -> tuple[str, str]:
        """A listing page's HTML once its cards are there: waits for the card selector,
        then scrolls (infinite scroll) or clicks "load more" until no new cards appear or
        ``max_scrolls`` is reached. Returns (html, final URL)."""
        spec = self.spec
        final = self._open(url)
        selector = spec.wait_for or "body"
        count = self._wait_for_more(selector, 0, spec.wait)
        self.session.answered(final)  # the page's own requests for its first cards ended
        if count == 0:
            raise FetchError(f"no element matched {selector!r} within {spec.wait:g} s "
                             "of rendering", "failed")
        for _ in range(spec.max_scrolls if (spec.scroll or spec.load_more) else 0):
            if spec.load_more:
                if not self._click_load_more(spec.load_more, final):
                    break
            else:
                self.session.pace(final)  # the page will ask the shop for the next batch
                self.driver.execute_script(SCROLL_JS)
            self.scrolls += 1
            more = self._wait_for_more(selector, count, spec.wait)
            self.session.answered(final)
            if more <= count:
                break
            count = more
        return self.driver.page_source, final

    def _click_load_more(self, selector: str, page_url: str) -> bool:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        buttons = [b for b in self.driver.find_elements(By.CSS_SELECTOR, selector)
                   if b.is_displayed() and b.is_enabled()]
        if not buttons:
            return False
        self.session.pace(page_url)
        try:
            self.driver.execute_script("arguments[0].scrollIntoView(); arguments[0].click();",
                                       buttons[0])
        except WebDriverException:
            return False
        return True

    def render_page(self, url: str) -> tuple[str, str]:
        """A product page's HTML after its scripts ran (and ``wait_for`` if it matches
        there). Returns (html, final URL)."""
        final = self._open(url)
        return self.driver.page_source, final
