"""Polite HTTP: robots.txt, one request at a time per host with a minimum gap, retries
with exponential backoff that honour Retry-After, timeouts and byte caps everywhere.

Redirects are followed here, hop by hop, so every hop is throttled, checked against
robots.txt and counted (a loop is reported as one). All failures become
:class:`FetchError` with a one-line reason, so the crawler can record them as data.
"""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scraper.profile import Politeness

RETRY_STATUSES = (429, 500, 502, 503, 504)


class FetchError(Exception):
    """A request that did not give usable content; ``kind`` is 'skipped' for deliberate
    refusals (robots.txt, caps) and 'failed' for errors worth retrying on a re-run."""

    def __init__(self, reason: str, kind: str = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class PoliteRetry(Retry):
    """urllib3 ``Retry`` whose every wait is at least the host's minimum gap, so retries
    never raise the request rate above the configured limit; Retry-After is honoured
    (capped by ``retry_after_max``)."""

    min_wait: float = 0.0

    def sleep(self, response=None) -> None:
        """Wait before the next attempt (see the class docstring)."""
        wait = self.get_backoff_time()
        if self.respect_retry_after_header and response is not None:
            retry_after = self.get_retry_after(response)
            if retry_after:
                wait = max(wait, retry_after)
        wait = max(wait, self.min_wait)
        if wait > 0:
            time.sleep(wait)


def make_retry(pol: Politeness, min_wait: float) -> Retry:
    """The retry policy mounted on the session: connection errors, read errors, 429, 5xx."""
    cls = type("HostRetry", (PoliteRetry,), {"min_wait": min_wait})
    return cls(
        total=pol.retries, connect=pol.retries, read=pol.retries, status=pol.retries,
        other=0, redirect=False, status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=pol.backoff,
        backoff_max=max(pol.backoff * 16, 1.0), raise_on_status=False,
        respect_retry_after_header=True, retry_after_max=int(pol.max_retry_after),
    )


@dataclass
class Response:
    """A finished request: final URL, status, headers and (capped) body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class _Host:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_done = 0.0
        self.robots: urllib.robotparser.RobotFileParser | None = None
        self.crawl_delay = 0.0


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout) or "ConnectTimeout" in text:
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout) or "timed out" in text.lower():
        return "timed out waiting for the server"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused (host unreachable)"
    if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
        return "host name not found"
    if "Max retries exceeded" in text or isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed: " + text.split("(Caused by ")[-1].rstrip(")")[:160]
    return f"{type(exc).__name__}: {text[:160]}"


class PoliteSession:
    """One :class:`requests.Session` shared by a crawl; see the module docstring."""

    def __init__(self, politeness: Politeness) -> None:
        self.pol = politeness
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": politeness.user_agent_header(),
                                     "Accept-Encoding": "gzip, deflate"})
        adapter = HTTPAdapter(max_retries=make_retry(politeness, politeness.delay))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._hosts: dict[str, _Host] = {}
        self._hosts_lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def _host(self, url: str) -> tuple[str, _Host]:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        with self._hosts_lock:
            host = self._hosts.setdefault(key, _Host())
        return key, host

    def delay_for(self, url: str) -> float:
        """The minimum gap between requests to this URL's host (config or Crawl-delay)."""
        return max(self.pol.delay, self._host(url)[1].crawl_delay)

    def _robots(self, origin: str, host: _Host) -> urllib.robotparser.RobotFileParser:
        if host.robots is None:
            parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
            try:
                resp = self._send(origin + "/robots.txt", host, max_bytes=512_000)
                status = resp.status
                text = resp.body.decode("utf-8", "replace")
            except FetchError:
                status, text = 0, ""
            # The robotparser conventions: 401/403 = disallow all, other 4xx = allow all;
            # an unreachable robots.txt is treated as allow-all like most crawlers do.
            if status in (401, 403):
                parser.disallow_all = True
            elif 200 <= status < 300:
                parser.parse(text.splitlines())
            else:
                parser.allow_all = True
            delay = parser.crawl_delay(self.pol.user_agent)
            host.crawl_delay = float(delay) if delay else 0.0
            if host.crawl_delay > self.pol.delay:
                # urllib3 retries happen inside the adapter: give this host its own retry
                # policy so a retry also waits at least the Crawl-delay.
                self.session.mount(origin + "/", HTTPAdapter(
                    max_retries=make_retry(self.pol, host.crawl_delay)))
            host.robots = parser
        return host.robots

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our User-Agent fetch ``url``."""
        origin, host = self._host(url)
        with host.lock:
            robots = self._robots(origin, host)
        return robots.can_fetch(self.pol.user_agent, url)

    def _send(self, url: str, host: _Host, max_bytes: int,
              accept: str = "*/*") -> Response:
        """One throttled GET (caller holds ``host.lock``); body streamed and capped."""
        gap = max(self.pol.delay, host.crawl_delay)
        wait = host.last_done + gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.requests_sent += 1
        started = time.monotonic()
        try:
            resp = self.session.get(url, stream=True, allow_redirects=False,
                                    timeout=(self.pol.timeout, self.pol.timeout),
                                    headers={"Accept": accept})
            try:
                length = resp.headers.get("Content-Length")
                if resp.status_code < 300 and length and length.isdigit() \
                        and int(length) > max_bytes:
                    raise FetchError(f"too large: {int(length)} bytes > cap {max_bytes}",
                                     "skipped")
                chunks, total = [], 0
                if resp.status_code < 300:
                    for chunk in resp.iter_content(65536):
                        total += len(chunk)
                        if total > max_bytes:
                            raise FetchError(f"too large: more than cap {max_bytes} bytes",
                                             "skipped")
                        if time.monotonic() - started > self.pol.max_download_seconds:
                            raise FetchError("download took longer than "
                                             f"{self.pol.max_download_seconds:g} s")
                        chunks.append(chunk)
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return Response(url, resp.status_code, headers, b"".join(chunks))
            finally:
                resp.close()
        except requests.RequestException as exc:
            raise FetchError(_reason(exc)) from None
        finally:
            host.last_done = time.monotonic()

    def get(self, url: str, max_bytes: int, accept: str = "*/*") -> Response:
        """GET ``url`` politely, following redirects; raise :class:`FetchError` unless 2xx."""
        seen = {url}
        for _ in range(self.pol.max_redirects + 1):
            origin, host = self._host(url)
            with host.lock:
                robots = self._robots(origin, host)
                if not robots.can_fetch(self.pol.user_agent, url):
                    raise FetchError(f"disallowed by robots.txt: {url}", "skipped")
                resp = self._send(url, host, max_bytes, accept)
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {resp.status} redirect without Location")
                nxt = urljoin(url, location)
                if urlsplit(nxt).scheme not in ("http", "https"):
                    raise FetchError(f"redirect to a non-http URL: {nxt}")
                if nxt in seen:
                    raise FetchError(f"redirect loop: {url} -> {nxt}")
                seen.add(nxt)
                url = nxt
                continue
            if resp.status >= 400 or resp.status < 200:
                raise FetchError(f"HTTP {resp.status}", "failed")
            return resp
        raise FetchError(f"too many redirects (more than {self.pol.max_redirects})")
