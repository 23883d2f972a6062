"""What a first visit costs a shopper on a slow phone: first paint, thumbnails, bytes.

    .venv/bin/python bench/bench_first_paint.py [--precomputed precomputed/demo] [--runs 3]
        [--urls / /explore ...] [--command "gunicorn app:server --bind 127.0.0.1:{port}"]
        [--json out.json] [--fail-on-target]

What it does:
1. starts the app on 127.0.0.1 with an ephemeral port (by default
   `gunicorn app:server --bind 127.0.0.1:PORT --workers 2` from the repo root, with
   LOOKALIKE_PRECOMPUTED set; `--command` runs any other start command through /bin/sh,
   `{port}` replaced, so two versions of the app can be compared) and waits until it answers;
2. drives headless Chromium through selenium with a fresh profile, the HTTP cache disabled
   (CDP Network.setCacheDisabled) and cookies, cache and storage cleared before every
   visit, so each visit is a first visit;
3. loads every URL once unrecorded (warm-up: workers' first requests), then N times
   unthrottled (reference) and N times under DevTools' "Slow 4G" network preset + a 4x CPU
   slowdown (CDP Network.emulateNetworkConditions, Emulation.setCPUThrottlingRate);
4. per visit records, relative to navigation start: first-contentful-paint (paint timing),
   the first product thumbnail loaded (the `load` event of the first <img> whose src contains
   "/thumbs/" or is an absolute http URL; else the responseEnd of its resource timing entry),
   DOMContentLoaded and load (navigation timing, event start); bytes on the wire (transferSize
   of the navigation entry plus every resource entry: all same-origin, so none is zeroed) and
   decoded bytes (decodedBodySize), the main document's HTTP status, and the text the shopper
   sees in the first painted frame: a script injected before any page script
   (Page.addScriptToEvaluateOnNewDocument) snapshots `document.body.innerText` on every DOM
   mutation until FCP and once more when the FCP entry is observed (see frame_text).
   A thumbnail can finish loading before FCP (render-blocking CSS still on its way): it is on
   screen at max(thumbnail, FCP);
5. after each load waits until the page settles (no request in flight according to the CDP
   Network events of chromedriver's performance log, every eager <img> complete, no request,
   DOM mutation or resource end for --quiet-ms) so late callbacks, lazily loaded script chunks
   and thumbnails are counted; a page that never settles is measured after --settle-timeout;
6. prints a table per URL (median/min/max, throttled vs unthrottled and their ratio) and a
   summary against the targets for "/": < 450 KB on the wire, FCP < 3.5 s throttled.

Chromium's throttling adds latency per request and shapes throughput; it does not model TCP
or TLS handshakes, and connections to 127.0.0.1 may be reused between visits. The snapshot
script itself runs under the CPU slowdown (one innerText per mutation batch before FCP).
Timings are noisy on a shared 2-core machine: compare medians, ideally on an idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import inspect
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT / "precomputed" / "demo"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KB = 1024

# Chrome DevTools' "Slow 4G" preset (called "Fast 3G" before May 2024), as defined in
# devtools-frontend front_end/core/sdk/NetworkManager.ts (Slow4GConditions):
#   download 1.6 * 1000 * 1000 / 8 * .9 = 180,000 B/s; upload 750 * 1000 / 8 * .9 = 84,375 B/s;
#   latency 150 ms * 3.75 = 562.5 ms; connection type cellular4g.
SLOW_4G: dict[str, Any] = {
    "offline": False,
    "latency": 150 * 3.75,
    "downloadThroughput": 1.6 * 1000 * 1000 / 8 * 0.9,
    "uploadThroughput": 750 * 1000 / 8 * 0.9,
    "connectionType": "cellular4g",
}
NO_THROTTLING: dict[str, Any] = {
    "offline": False,
    "latency": 0,
    "downloadThroughput": -1,
    "uploadThroughput": -1,
}
TARGET_WIRE_KB = 450.0
TARGET_FCP_S = 3.5

CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=412,915",  # a phone-sized viewport (Pixel 7 in CSS pixels)
)

# Injected before any page script of every document (the page's own scripts cannot miss it).
PROBE_JS = r"""
(() => {
  if (window.__bench) return;
  const b = window.__bench = {snapshots: [], fcpAt: null, fcpText: null, thumbLoad: null,
                              thumbSrc: null, lastMutation: 0, lastResource: 0};
  try { performance.setResourceTimingBufferSize(10000); } catch (e) {}
  const text = () => (document.body ? document.body.innerText : '').slice(0, 2000);
  const snap = () => {
    const t = text(), s = b.snapshots;
    if (!s.length || s[s.length - 1][1] !== t) s.push([performance.now(), t]);
  };
  new MutationObserver(() => {
    b.lastMutation = performance.now();
    if (b.fcpAt === null) snap();
  }).observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name === 'first-contentful-paint' && b.fcpAt === null) {
        b.fcpAt = performance.now(); b.fcpText = text();
      }
    }
  }).observe({type: 'paint', buffered: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) b.lastResource = Math.max(b.lastResource, e.responseEnd);
  }).observe({type: 'resource', buffered: true});
  const isThumb = (img) => {
    const a = img.getAttribute('src') || '';
    return a.includes('/thumbs/') || /^https?:\/\//i.test(a);
  };
  document.addEventListener('load', (ev) => {
    const el = ev.target;
    if (b.thumbLoad === null && el && el.tagName === 'IMG' && isThumb(el) && el.naturalWidth > 0) {
      b.thumbLoad = performance.now(); b.thumbSrc = el.currentSrc || el.src;
    }
  }, true);
})();
"""

STATE_JS = r"""
const b = window.__bench;
if (!b) return null;
const imgs = Array.from(document.images);
return {ready: document.readyState,
        // a lazy image far below the fold never loads: not pending
        pending: imgs.filter((i) => !i.complete && i.loading !== 'lazy').length,
        now: performance.now(), lastMutation: b.lastMutation, lastResource: b.lastResource};
"""

COLLECT_JS = r"""
const b = window.__bench || {};
const nav = performance.getEntriesByType('navigation')[0] || {};
const res = performance.getEntriesByType('resource');
const fcp = performance.getEntriesByName('first-contentful-paint')[0];
let wire = nav.transferSize || 0, decoded = nav.decodedBodySize || 0, thumbEnd = null;
for (const r of res) {
  wire += r.transferSize || 0; decoded += r.decodedBodySize || 0;
  if (r.name.includes('/thumbs/') && (thumbEnd === null || r.responseEnd < thumbEnd)) {
    thumbEnd = r.responseEnd;
  }
}
let thumbShown = null;
for (const i of document.images) {
  const a = i.getAttribute('src') || '';
  if ((a.includes('/thumbs/') || /^https?:\/\//i.test(a)) && i.complete && i.naturalWidth > 0) {
    thumbShown = i.currentSrc || i.src; break;
  }
}
return {status: nav.responseStatus === undefined ? null : nav.responseStatus,
        fcp: fcp ? fcp.startTime : null,
        dcl: nav.domContentLoadedEventStart || null, load: nav.loadEventStart || null,
        wire: wire, decoded: decoded, requests: res.length + 1,
        thumbLoad: b.thumbLoad === undefined ? null : b.thumbLoad, thumbEnd: thumbEnd,
        thumbShown: thumbShown, snapshots: b.snapshots || [], fcpText: b.fcpText || null,
        href: location.href};
"""


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class Visit:
    """One measured page load; times in seconds from navigation start."""

    url: str
    status: int | None = None
    fcp: float | None = None
    thumb: float | None = None
    dcl: float | None = None
    load: float | None = None
    wire: int = 0
    decoded: int = 0
    requests: int = 0
    fcp_text: str | None = None
    unsettled: str | None = None  # why the page had not settled when measured
    wall: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class Pass:
    """All visits of one throttling setting."""

    name: str
    network: dict[str, Any]
    cpu_rate: float
    visits: dict[str, list[Visit]] = field(default_factory=dict)


# --------------------------------------------------------------------------- environment


def cpu_line() -> str:
    """CPU model and whether AVX-512 / AMX flags exist, from /proc/cpuinfo."""
    model, flags = "", set[str]()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    amx = sorted(f for f in flags if f.startswith("amx"))
    model = model or platform.processor() or "unknown"
    return (f"CPU: {model} ({os.cpu_count()} cores); avx512: "
            f"{'yes (' + ' '.join(avx512) + ')' if avx512 else 'no'}; "
            f"amx: {'yes (' + ' '.join(amx) + ')' if amx else 'no'}")


def versions_line(dists: Sequence[str]) -> str:
    """"name version; ..." of the installed distributions that do a bench's work."""
    found = []
    for dist in dists:
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} missing")
    return "; ".join(found)


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 (free when asked; the server binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_product_id(folder: Path) -> str | None:
    """The id of the first product in the folder's products.json, if any."""
    try:
        data = json.loads((folder / "products.json").read_text())
    except (OSError, ValueError):
        return None
    products = data.get("products", []) if isinstance(data, dict) else data
    return str(products[0]["id"]) if products else None


def default_command() -> list[str]:
    """Gunicorn from the venv (or this interpreter's) with 2 workers; {port} left to fill."""
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    head = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
    return [*head, "app:server", "--bind", "127.0.0.1:{port}", "--workers", "2"]


# --------------------------------------------------------------------------- server


@contextlib.contextmanager
def running_server(command: str | None, folder: Path, port: int,
                   timeout: float) -> Iterator[str]:
    """Start the app in its own process group, yield its base URL, always stop the group."""
    env = {**os.environ, "LOOKALIKE_PRECOMPUTED": str(folder)}
    if command is None:
        argv: list[str] | str = [a.replace("{port}", str(port)) for a in default_command()]
        shown = shlex.join(argv)
    else:
        argv = command.replace("{port}", str(port))
        shown = argv
    print(f"server: {shown}  (cwd {ROOT}, LOOKALIKE_PRECOMPUTED={folder})")
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(argv, shell=isinstance(argv, str), cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            started = time.monotonic()
            wait_until_answers(base, proc, timeout, log)
            print(f"server answered after {time.monotonic() - started:.1f} s")
            yield base
        finally:
            stop_group(proc)


def wait_until_answers(base: str, proc: subprocess.Popen[bytes], timeout: float,
                       log: Any) -> None:
    """Poll GET / until any HTTP answer; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering:\n"
                             f"{log_tail(log)}")
        try:
            with urllib.request.urlopen(base + "/", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if with an error status
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"server did not answer on {base} within {timeout:.0f} s:\n"
                             f"{log_tail(log)}")
        time.sleep(0.2)


def log_tail(log: Any, lines: int = 30) -> str:
    """The last lines of the server's captured output."""
    log.flush()
    log.seek(0)
    return "\n".join(log.read().splitlines()[-lines:])


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it was started in its own session), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # gunicorn workers die with their arbiter; make sure nothing of the group survives
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- browser


def make_driver(chromium: str, chromedriver: str, profile: str, timeout: float) -> Any:
    """Headless Chromium through selenium (3.141 or 4.x), fresh profile, cache disabled."""
    for path, what in ((chromium, "chromium"), (chromedriver, "chromedriver")):
        if not Path(path).exists():
            raise SystemExit(f"{what} not found at {path}: install it (Debian: apt-get install "
                             f"chromium chromium-driver) or pass --{what} PATH")
    try:
        from selenium import webdriver
    except ImportError as exc:
        raise SystemExit("selenium is missing: install dash[testing] in the venv") from exc
    from selenium.webdriver.remote.remote_connection import RemoteConnection

    # selenium 3.141 (dash[testing] pins selenium<=4.2) passes a sentinel default HTTP
    # timeout that urllib3 2.x rejects; an explicit one, longer than a page load, avoids it.
    if getattr(RemoteConnection, "get_timeout", lambda: 0)() is None:
        RemoteConnection.set_timeout(timeout + 60)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # CDP Network events in chromedriver's performance log: requests in flight (see NetworkLog)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True,
                                                         "enablePage": False})
    if "service" in inspect.signature(webdriver.Chrome).parameters:  # selenium 4
        from selenium.webdriver.chrome.service import Service

        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    else:  # selenium 3
        driver = webdriver.Chrome(executable_path=chromedriver, options=options)
    try:
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(30)
        cdp(driver, "Network.enable")
        cdp(driver, "Network.setCacheDisabled", cacheDisabled=True)
        cdp(driver, "Page.addScriptToEvaluateOnNewDocument", source=PROBE_JS)
    except Exception:
        quit_driver(driver)
        raise
    return driver


def cdp(driver: Any, command: str, **params: Any) -> dict[str, Any]:
    """One Chrome DevTools Protocol command on the current tab."""
    return driver.execute_cdp_cmd(command, params)


def quit_driver(driver: Any) -> None:
    """Close Chromium; if chromedriver does not answer, stop its service process."""
    try:
        driver.quit()
    except Exception:
        with contextlib.suppress(Exception):
            driver.service.stop()


def set_throttling(driver: Any, network: dict[str, Any], cpu_rate: float) -> None:
    """Apply network conditions and CPU slowdown to the tab (kept across navigations)."""
    cdp(driver, "Network.emulateNetworkConditions", **network)
    cdp(driver, "Emulation.setCPUThrottlingRate", rate=cpu_rate)


def chromium_version(driver: Any) -> str:
    """Browser version as chromedriver reports it."""
    caps = driver.capabilities
    return str(caps.get("browserVersion") or caps.get("version") or "unknown")


# --------------------------------------------------------------------------- one visit


class NetworkLog:
    """Requests in flight in the tab, from the CDP Network events of chromedriver's log.

    A page is not settled while any request is in flight: lazily loaded script chunks
    (e.g. Plotly's) and streamed fetch bodies neither mutate the DOM nor show up in
    resource timing until they end.
    """

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.inflight: dict[str, str] = {}
        self.last_activity = time.monotonic()
        self.enabled = True

    def reset(self) -> None:
        """Forget everything logged so far (the previous page's requests)."""
        self.poll()
        self.inflight.clear()
        self.last_activity = time.monotonic()

    def poll(self) -> None:
        """Read new events; without a performance log, stay disabled (JS checks only)."""
        if not self.enabled:
            return
        try:
            entries = self.driver.get_log("performance")
        except Exception:
            self.enabled = False
            return
        for entry in entries:
            try:
                message = json.loads(entry["message"])["message"]
            except (KeyError, TypeError, ValueError):
                continue
            method, params = message.get("method", ""), message.get("params") or {}
            rid = params.get("requestId")
            if method == "Network.requestWillBeSent":
                url = (params.get("request") or {}).get("url", "")
                if url.startswith(("http:", "https:")):
                    self.inflight[rid] = url
                    self.last_activity = time.monotonic()
            elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                self.inflight.pop(rid, None)
                self.last_activity = time.monotonic()
            elif method in ("Network.dataReceived", "Network.responseReceived"):
                self.last_activity = time.monotonic()


def visit(driver: Any, net: NetworkLog, base: str, path: str, quiet_ms: float,
          settle_timeout: float) -> Visit:
    """Load base+path as a first visit, wait until it settles, read its timings and bytes."""
    record = Visit(url=path)
    driver.get("about:blank")
    cdp(driver, "Network.clearBrowserCache")
    cdp(driver, "Network.clearBrowserCookies")
    with contextlib.suppress(Exception):
        cdp(driver, "Storage.clearDataForOrigin", origin=base, storageTypes="all")
    net.reset()
    started = time.monotonic()
    try:
        driver.get(base + path)
    except Exception as exc:  # page-load timeout: measure what there is
        record.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        with contextlib.suppress(Exception):
            driver.execute_script("window.stop();")
    record.unsettled = wait_settled(driver, net, quiet_ms, settle_timeout)
    record.wall = time.monotonic() - started
    data = driver.execute_script(COLLECT_JS) or {}
    ms = 1000.0
    record.status = data.get("status")
    record.fcp = data["fcp"] / ms if data.get("fcp") is not None else None
    record.dcl = data["dcl"] / ms if data.get("dcl") else None
    record.load = data["load"] / ms if data.get("load") else None
    thumb = data.get("thumbLoad")
    if thumb is None and data.get("thumbShown"):
        thumb = data.get("thumbEnd")  # shown, but its load event was missed
    record.thumb = thumb / ms if thumb is not None else None
    record.wire = int(data.get("wire") or 0)
    record.decoded = int(data.get("decoded") or 0)
    record.requests = int(data.get("requests") or 0)
    record.fcp_text = frame_text(data.get("snapshots") or [], data.get("fcp"),
                                 data.get("fcpText"))
    return record


def wait_settled(driver: Any, net: NetworkLog, quiet_ms: float,
                 timeout: float) -> str | None:
    """Wait for no request in flight, eager images complete, and quiet_ms without a request,
    a DOM mutation or a resource ending; None once settled, else why not after timeout."""
    deadline = time.monotonic() + timeout
    why = "no answer from the page"
    while time.monotonic() < deadline:
        net.poll()
        try:
            s = driver.execute_script(STATE_JS)
        except Exception:
            s = None
        if s:
            page_quiet = s["now"] - max(s["lastMutation"], s["lastResource"])
            net_quiet = (time.monotonic() - net.last_activity) * 1000
            if s["ready"] != "complete":
                why = f"document {s['ready']}"
            elif net.inflight:
                why = f"{len(net.inflight)} request(s) in flight: " \
                      f"{', '.join(list(net.inflight.values())[:3])}"
            elif s["pending"]:
                why = f"{s['pending']} image(s) loading"
            elif min(page_quiet, net_quiet) < quiet_ms:
                why = f"DOM/network busy (quiet {min(page_quiet, net_quiet):.0f} ms)"
            else:
                return None
        time.sleep(0.25)
    return why


def frame_text(snapshots: list[list[Any]], fcp_ms: float | None,
               at_fcp: str | None) -> str | None:
    """Visible text of the first painted frame.

    The DOM as painted is the last snapshot taken before FCP. If the text did not change
    between then and the FCP callback, the callback's own reading is used instead: same DOM,
    but read with the render-blocking CSS applied (innerText follows CSS: text-transform,
    display), as the shopper sees it.
    """
    if fcp_ms is None:
        return None
    before = [i for i, (t, _text) in enumerate(snapshots) if t <= fcp_ms]
    painted = snapshots[before[-1]][1] if before else None
    text = at_fcp if at_fcp is not None else painted
    if painted is not None and at_fcp is not None and before[-1] < len(snapshots) - 1 \
            and not same_text(painted, at_fcp):
        text = painted  # the DOM's text changed between the paint and the callback
    return None if text is None else " ".join(text.split())[:200]


def same_text(a: str, b: str) -> bool:
    """Same text but for whitespace and case (what CSS display/text-transform change),
    compared over the shorter of the two (snapshots are truncated)."""
    a, b = ("".join(t.split()).casefold() for t in (a, b))
    n = min(len(a), len(b))
    return a[:n] == b[:n]


# --------------------------------------------------------------------------- passes


def run_pass(driver: Any, net: NetworkLog, base: str, paths: Sequence[str], runs: int, one: Pass,
             quiet_ms: float, settle_timeout: float) -> None:
    """Visit every path `runs` times under one throttling setting, printing progress."""
    set_throttling(driver, one.network, one.cpu_rate)
    for path in paths:
        for i in range(runs):
            v = visit(driver, net, base, path, quiet_ms, settle_timeout)
            one.visits.setdefault(path, []).append(v)
            note = f" (did not settle: {v.unsettled})" if v.unsettled else ""
            note += f" [{v.error}]" if v.error else ""
            print(f"  {one.name:<11} {path:<40} run {i + 1}: FCP {fmt(v.fcp)} s, "
                  f"thumb {fmt(v.thumb)} s, load {fmt(v.load)} s, "
                  f"{v.wire / KB:.0f} KB, HTTP {v.status}, {v.wall:.1f} s wall{note}",
                  flush=True)


def fmt(value: float | None, digits: int = 2) -> str:
    """A number or a dash."""
    return "-" if value is None else f"{value:.{digits}f}"


def stats(values: Sequence[float | None]) -> tuple[float | None, float | None, float | None]:
    """Median, min and max of the values that exist."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None, None
    return statistics.median(present), min(present), max(present)


METRICS: tuple[tuple[str, Callable[[Visit], float | None], int], ...] = (
    ("FCP (s)", lambda v: v.fcp, 2),
    ("first thumbnail (s)", lambda v: v.thumb, 2),
    ("DOMContentLoaded (s)", lambda v: v.dcl, 2),
    ("load (s)", lambda v: v.load, 2),
    ("on the wire (KB)", lambda v: v.wire / KB, 1),
    ("decoded (KB)", lambda v: v.decoded / KB, 1),
    ("requests", lambda v: float(v.requests), 0),
)


def print_tables(paths: Sequence[str], throttled: Pass, reference: Pass | None) -> None:
    """One table per URL: median/min/max throttled, unthrottled, ratio of medians."""
    for path in paths:
        tv = throttled.visits.get(path, [])
        rv = reference.visits.get(path, []) if reference else []
        statuses = sorted({str(v.status) for v in tv + rv})
        print(f"\n{path}   HTTP {'/'.join(statuses)}")
        head = f"  {'':<22}{'Slow 4G + ' + fmt(throttled.cpu_rate, 0) + 'x CPU':>26}"
        if reference:
            head += f"{'unthrottled':>26}{'ratio':>8}"
        print(head)
        print(f"  {'':<22}{'median':>10}{'min':>8}{'max':>8}"
              + (f"{'median':>10}{'min':>8}{'max':>8}{'':>8}" if reference else ""))
        for label, get, digits in METRICS:
            t = stats([get(v) for v in tv])
            line = f"  {label:<22}{fmt(t[0], digits):>10}{fmt(t[1], digits):>8}" \
                   f"{fmt(t[2], digits):>8}"
            if reference:
                r = stats([get(v) for v in rv])
                ratio = fmt(t[0] / r[0], 1) + "x" if t[0] and r[0] else "-"
                line += f"{fmt(r[0], digits):>10}{fmt(r[1], digits):>8}{fmt(r[2], digits):>8}" \
                        f"{ratio:>8}"
            print(line)
        for name, visits in ((throttled.name, tv), ("unthrottled", rv)):
            texts = list(dict.fromkeys(repr(v.fcp_text) for v in visits))
            if texts:
                print(f"  first painted frame ({name}): {' | '.join(texts)}")
        problems = [v for v in tv + rv if v.error or v.unsettled]
        if problems:
            print(f"  {len(problems)} visit(s) timed out or did not settle")


def summary(throttled: Pass, reference: Pass | None, home: str = "/") -> bool:
    """Print the target line for the home page; True when both targets are met."""
    tv = throttled.visits.get(home, [])
    if not tv:
        print(f"\nSUMMARY: {home!r} was not measured; targets not checked")
        return False
    wire = stats([v.wire / KB for v in tv])[0]
    fcp = stats([v.fcp for v in tv])[0]
    ref_fcp = stats([v.fcp for v in reference.visits.get(home, [])])[0] if reference else None
    wire_ok = wire is not None and wire < TARGET_WIRE_KB
    fcp_ok = fcp is not None and fcp < TARGET_FCP_S
    ratio = f" (x{fcp / ref_fcp:.1f})" if fcp and ref_fcp else ""
    print(f"\nSUMMARY first visit {home!r}: on the wire {fmt(wire, 1)} KB "
          f"(target < {TARGET_WIRE_KB:.0f} KB: {'OK' if wire_ok else 'MISS'}); "
          f"FCP {fmt(fcp)} s on Slow 4G + {throttled.cpu_rate:g}x CPU "
          f"(target < {TARGET_FCP_S} s: {'OK' if fcp_ok else 'MISS'}); "
          f"unthrottled FCP {fmt(ref_fcp)} s{ratio}")
    return wire_ok and fcp_ok


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precomputed", type=Path, default=DEFAULT_FOLDER,
                    help="folder served (LOOKALIKE_PRECOMPUTED); default precomputed/demo")
    ap.add_argument("--command", help="start command instead of gunicorn, run by /bin/sh from "
                    "the repo root; {port} is replaced by the chosen port")
    ap.add_argument("--urls", nargs="+", help="paths to load (default: /, /product/<first id>, "
                    "/explore, /no-such-page)")
    ap.add_argument("--runs", type=int, default=3, help="visits per URL and pass (default 3)")
    ap.add_argument("--cpu-rate", type=float, default=4.0, help="CPU slowdown (default 4)")
    ap.add_argument("--skip-unthrottled", action="store_true", help="no reference pass")
    ap.add_argument("--timeout", type=float, default=90.0, help="page-load timeout, s")
    ap.add_argument("--settle-timeout", type=float, default=90.0,
                    help="longest wait after load for the page to settle, s")
    ap.add_argument("--quiet-ms", type=float, default=1000.0,
                    help="settled = no request, DOM mutation or resource end for this long (ms)")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="server start-up, s")
    ap.add_argument("--chromium", default=CHROMIUM)
    ap.add_argument("--chromedriver", default=CHROMEDRIVER)
    ap.add_argument("--json", type=Path, help="also write every visit to this JSON file")
    ap.add_argument("--fail-on-target", action="store_true",
                    help="exit 1 when '/' misses a target")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server and the browser, run the passes, print the report."""
    args = parse_args(argv)
    folder = args.precomputed.resolve()
    paths = args.urls
    if not paths:
        pid = first_product_id(folder)
        paths = ["/", *([f"/product/{quote(pid, safe='')}"] if pid else []),
                 "/explore", "/no-such-page"]
    # a SIGTERM to the bench unwinds through the finally blocks (server and browser stopped)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    print(cpu_line())
    throttled = Pass(f"slow4g+{args.cpu_rate:g}x", SLOW_4G, args.cpu_rate)
    reference = None if args.skip_unthrottled else Pass("unthrottled", NO_THROTTLING, 1.0)
    with running_server(args.command, folder, free_port(), args.start_timeout) as base, \
            tempfile.TemporaryDirectory(prefix="bench-chromium-",
                                        ignore_cleanup_errors=True) as profile:
        driver = make_driver(args.chromium, args.chromedriver, profile, args.timeout)
        try:
            print(f"chromium: {chromium_version(driver)} (headless, cache disabled, "
                  f"fresh profile, cookies/cache/storage cleared before each visit)")
            print("throttling: DevTools 'Slow 4G' network: latency "
                  f"{SLOW_4G['latency']:g} ms, download {SLOW_4G['downloadThroughput']:,.0f} B/s "
                  f"({SLOW_4G['downloadThroughput'] * 8 / 1e6:.2f} Mbit/s), upload "
                  f"{SLOW_4G['uploadThroughput']:,.0f} B/s "
                  f"({SLOW_4G['uploadThroughput'] * 8 / 1e6:.3f} Mbit/s), "
                  f"{SLOW_4G['connectionType']}; CPU slowdown {args.cpu_rate:g}x")
            print(f"urls: {' '.join(paths)}; {args.runs} run(s) each per pass, after one "
                  "unrecorded warm-up visit each")
            net = NetworkLog(driver)
            set_throttling(driver, NO_THROTTLING, 1.0)
            for path in paths:  # warm-up, unrecorded
                visit(driver, net, base, path, args.quiet_ms, args.settle_timeout)
            print("settled = " + ("no request in flight (CDP network log), " if net.enabled
                                  else "(no network log: DOM and resource timing only) ")
                  + f"eager images complete, {args.quiet_ms:g} ms quiet\n")
            if reference:
                run_pass(driver, net, base, paths, args.runs, reference, args.quiet_ms,
                         args.settle_timeout)
            run_pass(driver, net, base, paths, args.runs, throttled, args.quiet_ms,
                     args.settle_timeout)
        finally:
            quit_driver(driver)
    print_tables(paths, throttled, reference)
    ok = summary(throttled, reference)
    print(f"bench took {time.monotonic() - began:.0f} s")
    if args.json:
        passes = [p for p in (reference, throttled) if p]
        args.json.write_text(json.dumps(
            {p.name: {"network": p.network, "cpu_rate": p.cpu_rate,
                      "visits": {u: [asdict(v) for v in vs] for u, vs in p.visits.items()}}
             for p in passes}, indent=1))
    return 1 if args.fail_on_target and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
