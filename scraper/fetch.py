"""Polite HTTP: robots.txt by RFC 9309, one request at a time per host with a minimum gap,
retries with exponential backoff that honour Retry-After, hard deadlines, and only the
hosts the profile names.

- **robots.txt** (parsed by Protego: longest match, wildcards, ``Crawl-delay``): 2xx is
  parsed (its first 500 KiB), 4xx means no rules, 5xx, 429 or a network failure means the
  whole host is off limits for this run (its work stays pending for the next run), up to
  five redirects are followed, to any host (``http`` -> ``https`` is common).
- **Per host**: one request at a time, at least ``delay`` (or ``Crawl-delay``, or the
  adaptive delay) after the previous response ended; retries, redirects and browser
  navigations included. Different hosts proceed in parallel (the caller's threads).
- **Retries**: urllib3's ``Retry`` is the policy (connection errors, read errors, 429,
  5xx, backoff, Retry-After); the loop is ours so every attempt is throttled and counted.
  A Retry-After over ``max_retry_after`` pauses the host; over ``max_host_pause`` the host
  is dropped for the run and later requests to it raise a ``deferred`` error.
- **Deadlines**: the response headers must arrive within ``timeout`` and the whole
  response within ``max_download_seconds``, however slowly a server drips; a watchdog
  shuts the socket down when a deadline passes. A deadline is not retried.
- **Redirects** are followed here, hop by hop: each hop is throttled, robots-checked,
  checked against the allowed hosts and counted; a loop is reported as one.

All failures become :class:`FetchError` with a one-line reason, so the crawler can record
them as data.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from protego import Protego
from requests.adapters import HTTPAdapter
from requests.utils import parse_header_links
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry

from scraper.profile import Politeness, host_allowed

RETRY_STATUSES = (429, 500, 502, 503, 504)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: parse at least the first 500 KiB
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309: follow at least five consecutive redirects
T = TypeVar("T")


class FetchError(Exception):
    """A request that did not give usable content. ``kind``: 'skipped' for deliberate
    refusals (robots.txt, caps, off-site), 'failed' for errors worth retrying on a re-run,
    'deferred' for work this run may not do (host dropped, robots.txt unavailable): it
    stays pending for the next run."""

    def __init__(self, reason: str, kind: str = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def make_retry(pol: Politeness) -> Retry:
    """The retry policy: connection errors, read errors, 429 and 5xx, exponential backoff,
    Retry-After respected (the pause itself is decided by the session)."""
    return Retry(
        total=pol.retries, connect=pol.retries, read=pol.retries, status=pol.retries,
        other=0, redirect=False, status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}), backoff_factor=pol.backoff,
        backoff_max=max(pol.backoff * 16, 1.0), raise_on_status=False,
        respect_retry_after_header=True,
    )


@dataclass
class Response:
    """A finished request: final URL, status, headers and (capped) body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def next_link(self) -> str | None:
        """The absolute URL of a ``Link: <...>; rel="next"`` header, if any."""
        for link in parse_header_links(self.headers.get("link", "")):
            if "next" in str(link.get("rel", "")).split() and link.get("url"):
                return urljoin(self.url, link["url"])
        return None


# --- deadlines ------------------------------------------------------------------------

class _Deadline:
    """Shuts the request's socket down when its headers or its whole body are late."""

    _local = threading.local()

    def __init__(self, headers_s: float, total_s: float) -> None:
        self.started = time.monotonic()
        self.total_s = total_s
        self.expired: str | None = None
        self._conn: HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(headers_s, self._fire, (f"no response headers within "
                                                              f"{headers_s:g} s",))
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _Deadline._local.current = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _Deadline._local.current = None
        self._timer.cancel()

    @classmethod
    def current(cls) -> _Deadline | None:
        """The deadline of the request this thread is making, if any."""
        return getattr(cls._local, "current", None)

    def headers_received(self) -> None:
        """From now on only the total deadline counts."""
        self._timer.cancel()
        left = self.total_s - (time.monotonic() - self.started)
        reason = f"response not complete within {self.total_s:g} s (max_download_seconds)"
        self._timer = threading.Timer(max(left, 0.0), self._fire, (reason,))
        self._timer.daemon = True
        self._timer.start()

    def attach(self, conn: HTTPConnection) -> None:
        """Watch ``conn`` (called by the connection when it connects or sends)."""
        with self._lock:
            self._conn = conn
        if self.expired:
            self._kill()

    def _fire(self, reason: str) -> None:
        self.expired = reason
        self._kill()

    def _kill(self) -> None:
        with self._lock:
            sock = getattr(self._conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """Connection mixin: tells the thread's :class:`_Deadline` which socket to watch."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if (deadline := _Deadline.current()) is not None:
            deadline.attach(self)  # type: ignore[arg-type]

    def request(self, *args, **kwargs) -> None:
        if (deadline := _Deadline.current()) is not None:
            deadline.attach(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections a :class:`_Deadline` can shut down; no retries
    here (the session's loop retries, so every attempt is throttled and counted)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


# --- hosts ----------------------------------------------------------------------------

class _Host:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_done = 0.0
        self.not_before = 0.0  # a pause asked for by Retry-After
        self.robots: Protego | None = None
        self.crawl_delay = 0.0
        self.adaptive_delay = 0.0
        self.unavailable: str | None = None  # why this host is off limits for the run


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


def _as_urllib3_error(exc: requests.RequestException) -> Exception:
    """The urllib3 error ``Retry.increment`` classifies (connect or read)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return ConnectTimeoutError(str(exc))
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
            exc, requests.exceptions.ReadTimeout) and "NewConnectionError" in str(exc):
        return ConnectTimeoutError(str(exc))
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return ReadTimeoutError(None, None, str(exc))  # type: ignore[arg-type]
    return ProtocolError(str(exc))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class PoliteSession:
    """One :class:`requests.Session` shared by a crawl (thread-safe); see the module
    docstring. ``allowed_hosts`` empty means any host."""

    def __init__(self, politeness: Politeness, allowed_hosts: Iterable[str] = ()) -> None:
        self.pol = politeness
        self.allowed_hosts = tuple(allowed_hosts)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": politeness.user_agent_header(),
                                     "Accept-Encoding": "gzip, deflate"})
        adapter = _DeadlineAdapter(max_retries=0, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def _host(self, url: str) -> tuple[str, _Host]:
        origin = _origin(url)
        with self._lock:
            host = self._hosts.setdefault(origin, _Host())
        return origin, host

    def host_problems(self) -> list[tuple[str, str]]:
        """(origin, reason) for every host that was off limits during this run."""
        with self._lock:
            return sorted((o, h.unavailable) for o, h in self._hosts.items() if h.unavailable)

    def delay_for(self, url: str) -> float:
        """The minimum gap between requests to this URL's host (config, Crawl-delay or the
        adaptive delay)."""
        host = self._host(url)[1]
        return max(self.pol.delay, host.crawl_delay, host.adaptive_delay)

    def check_on_site(self, url: str) -> None:
        """Raise a 'skipped' :class:`FetchError` if ``url``'s host is not allowed."""
        if self.allowed_hosts and not host_allowed(url, self.allowed_hosts):
            netloc = urlsplit(url).netloc
            raise FetchError(f"off-site: host {netloc} is not in the profile's allowed_hosts "
                             f"({', '.join(self.allowed_hosts)}); not followed", "skipped")

    # robots.txt ------------------------------------------------------------------------
    def _robots(self, origin: str, host: _Host) -> Protego:
        """The host's rules, fetched once per run (caller holds ``host.lock``)."""
        if host.robots is not None:
            return host.robots
        url = origin + "/robots.txt"
        status, text, problem = 0, "", None
        try:
            for _ in range(ROBOTS_MAX_REDIRECTS + 1):
                hop_host = host if _origin(url) == origin else self._host(url)[1]
                resp = self._send(url, hop_host, ROBOTS_MAX_BYTES, "text/plain,*/*;q=0.5",
                                  truncate=True)
                status = resp.status
                location = resp.headers.get("location")
                if status in REDIRECT_STATUSES and location:
                    url = urljoin(url, location)
                    continue
                text = resp.body.decode("utf-8", "replace")
                break
            else:
                status = 404  # RFC 9309: more redirects than that = unavailable (no rules)
        except FetchError as exc:
            problem = f"robots.txt unreachable ({exc.reason})"
        if problem is None and (status >= 500 or status == 429):
            problem = f"robots.txt answered HTTP {status}"
        if problem:
            # RFC 9309 2.3.1.4: unreachable robots.txt = assume complete disallow.
            host.unavailable = f"{problem}: host not crawled this run, retried next run"
            rules = Protego.parse("User-agent: *\nDisallow: /\n")
        elif 200 <= status < 300:
            rules = Protego.parse(text.lstrip("\ufeff"))
        else:  # 4xx (and a stray 1xx/3xx): no rules apply
            rules = Protego.parse("")
        delay = rules.crawl_delay(self.pol.user_agent)
        host.crawl_delay = float(delay) if delay else 0.0
        host.robots = rules
        return rules

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our User-Agent fetch ``url``."""
        origin, host = self._host(url)
        with host.lock:
            robots = self._robots(origin, host)
        return robots.can_fetch(url, self.pol.user_agent)

    def _admit(self, url: str, origin: str, host: _Host) -> None:
        """Checks before any request for the crawl (caller holds ``host.lock``)."""
        self.check_on_site(url)
        robots = self._robots(origin, host)
        if host.unavailable:
            raise FetchError(f"{origin}: {host.unavailable}", "deferred")
        if not robots.can_fetch(url, self.pol.user_agent):
            raise FetchError(f"disallowed by robots.txt: {url}", "skipped")

    # one request -----------------------------------------------------------------------
    def _wait_turn(self, host: _Host) -> None:
        gap = max(self.pol.delay, host.crawl_delay, host.adaptive_delay)
        wait = max(host.last_done + gap, host.not_before) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with self._lock:
            self.requests_sent += 1

    def _adapt(self, host: _Host, latency: float, status: int) -> None:
        """AutoThrottle (as Scrapy's): the delay moves halfway towards the last latency,
        never below the configured delay or above ``max_delay``; errors never lower it."""
        if not self.pol.autothrottle:
            return
        floor = max(self.pol.delay, host.crawl_delay)
        current = max(host.adaptive_delay, floor)
        new = min(max((current + latency) / 2, latency, floor), self.pol.max_delay)
        if status == 200 or new > current:
            host.adaptive_delay = new

    def _send(self, url: str, host: _Host, max_bytes: int, accept: str = "*/*",
              truncate: bool = False) -> Response:
        """One throttled GET (caller holds ``host.lock``), with retries; body streamed,
        capped (or cut at ``max_bytes`` with ``truncate``) and under the deadlines."""
        retry = make_retry(self.pol)
        while True:
            self._wait_turn(host)
            started = time.monotonic()
            try:
                resp = self._attempt(url, max_bytes, accept, truncate)
                error = None
            except _RetryableError as exc:
                resp, error = None, exc
            finally:
                host.last_done = time.monotonic()
            if error is not None:
                try:
                    retry = retry.increment("GET", url, error=error.cause)
                except MaxRetryError:
                    raise FetchError(error.reason) from None
                host.not_before = time.monotonic() + retry.get_backoff_time()
                continue
            assert resp is not None
            self._adapt(host, host.last_done - started, resp.status)
            if not retry.is_retry("GET", resp.status, "retry-after" in resp.headers):
                return resp
            raw = HTTPResponse(body=b"", headers=resp.headers, status=resp.status,
                               preload_content=False)
            retry_after = retry.get_retry_after(raw) or 0.0
            if retry_after > self.pol.max_host_pause:
                host.unavailable = (f"asked to wait {retry_after:g} s (HTTP {resp.status} "
                                    f"Retry-After), more than max_host_pause "
                                    f"{self.pol.max_host_pause:g} s: host dropped for this run, "
                                    "its work stays pending for the next run")
                raise FetchError(f"{_origin(url)}: {host.unavailable}", "deferred")
            try:
                retry = retry.increment("GET", url, response=raw)
            except MaxRetryError:
                return resp
            # Within max_retry_after the request waits; beyond it (up to max_host_pause)
            # the whole host pauses: same wait, and other hosts go on meanwhile.
            host.not_before = time.monotonic() + max(retry.get_backoff_time(), retry_after)

    def _attempt(self, url: str, max_bytes: int, accept: str, truncate: bool) -> Response:
        headers_s = min(self.pol.timeout, self.pol.max_download_seconds)
        with _Deadline(headers_s, self.pol.max_download_seconds) as deadline:
            try:
                resp = self.session.get(url, stream=True, allow_redirects=False,
                                        timeout=(self.pol.timeout, self.pol.timeout),
                                        headers={"Accept": accept})
            except requests.RequestException as exc:
                if deadline.expired:
                    raise FetchError(f"timed out: {deadline.expired}") from None
                raise _RetryableError(_reason(exc), _as_urllib3_error(exc)) from None
            deadline.headers_received()
            try:
                return self._read_body(url, resp, max_bytes, truncate)
            except (requests.RequestException, OSError) as exc:
                if deadline.expired:
                    raise FetchError(f"timed out: {deadline.expired}") from None
                raise _RetryableError(_reason(exc), ProtocolError(str(exc))) from None
            finally:
                resp.close()
                if deadline.expired:
                    raise FetchError(f"timed out: {deadline.expired}")

    @staticmethod
    def _read_body(url: str, resp: requests.Response, max_bytes: int,
                   truncate: bool) -> Response:
        headers = {k.lower(): v for k, v in resp.headers.items()}
        chunks: list[bytes] = []
        total, cut = 0, False
        if resp.status_code < 300:
            length = headers.get("content-length", "")
            if not truncate and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"too large: {int(length)} bytes > cap {max_bytes}",
                                 "skipped")
            for chunk in resp.iter_content(65536):
                if total + len(chunk) > max_bytes:
                    if not truncate:
                        raise FetchError(f"too large: more than cap {max_bytes} bytes",
                                         "skipped")
                    chunks.append(chunk[:max_bytes - total])
                    cut = True
                    break
                total += len(chunk)
                chunks.append(chunk)
        return Response(url, resp.status_code, headers, b"".join(chunks), cut)

    # public ----------------------------------------------------------------------------
    def get(self, url: str, max_bytes: int, accept: str = "*/*") -> Response:
        """GET ``url`` politely, following redirects; raise :class:`FetchError` unless 2xx."""
        seen = {url}
        for _ in range(self.pol.max_redirects + 1):
            origin, host = self._host(url)
            with host.lock:
                self._admit(url, origin, host)
                resp = self._send(url, host, max_bytes, accept)
            if resp.status in REDIRECT_STATUSES:
                location = resp.headers.get("location")
                if not location:
                    raise FetchError(f"HTTP {resp.status} redirect without Location")
                nxt = urljoin(url, location)
                if urlsplit(nxt).scheme not in ("http", "https"):
                    raise FetchError(f"redirect to a non-http URL: {nxt}")
                if nxt in seen:
                    raise FetchError(f"redirect loop: {url} -> {nxt}")
                try:
                    self.check_on_site(nxt)
                except FetchError as exc:
                    raise FetchError(f"redirect to {nxt}: {exc.reason}", "skipped") from None
                seen.add(nxt)
                url = nxt
                continue
            if resp.status >= 400 or resp.status < 200:
                raise FetchError(f"HTTP {resp.status}", "failed")
            return resp
        raise FetchError(f"too many redirects (more than {self.pol.max_redirects})")

    def navigate(self, url: str, go: Callable[[], T]) -> T:
        """Run ``go`` (a browser navigation to ``url``) under the same rules as a request:
        allowed host, robots.txt, the host's turn and delay, counted."""
        origin, host = self._host(url)
        with host.lock:
            self._admit(url, origin, host)
            self._wait_turn(host)
            try:
                return go()
            finally:
                host.last_done = time.monotonic()

    def answered(self, url: str) -> None:
        """Note that ``url``'s host just finished answering a request the page made itself
        (the delay before the next one counts from now)."""
        _, host = self._host(url)
        with host.lock:
            host.last_done = max(host.last_done, time.monotonic())

    def pace(self, url: str) -> None:
        """Wait until ``url``'s host may be asked again (for requests a page makes itself,
        e.g. the next batch of an infinite-scroll grid), then mark it as asked."""
        _, host = self._host(url)
        with host.lock:
            gap = max(self.pol.delay, host.crawl_delay, host.adaptive_delay)
            wait = host.last_done + gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            host.last_done = time.monotonic()


class _RetryableError(Exception):
    """A failed attempt the retry policy may repeat: its reason and urllib3 error."""

    def __init__(self, reason: str, cause: Exception) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
