"""300,000 products on one small dyno: the shop front under the Procfile's gunicorn, against
the old in-memory app, in one run.

    .venv/bin/python bench/bench_app.py [--sizes 10000,100000,300000] [--duration 8]
        [--connections 16] [--requests-for-rss 10000] [--product-runs 2] [--skip-old]

For each size it:
1. generates (once; cached in bench/out/, git-ignored) a contract-2 folder with
   tests/fake_precomputed.py, written by the pipeline's writer (so with shop.sqlite);
2. starts the NEW app as production does (`gunicorn -c python:shopfront.gunicorn_conf
   app:server --workers 2`, a free port on 127.0.0.1), then the OLD app (commit e70a33f:
   app.py and pipeline/ from git, assets/ from the tree, `gunicorn app:server --preload
   --workers 2`; it loads the JSON into memory and ignores shop.sqlite). Start-up is
   spawn -> both worker processes forked and a 200 from the server;
3. builds each app's callback requests from its own /_dash-dependencies (the two apps'
   router and catalog callbacks differ) and the catalog page's filter ids;
4. loads each app in turn with `wrk` (2 threads, --connections, --duration; a Lua script
   reads the request list and the product ids from files and picks at random per
   request): the product-page (router) callback for a random /product/<id>, --product-runs
   times, alternating the apps, then with Accept-Encoding br, then the catalog search
   callback (a word from a small list, sometimes a filter, a sort or a later page). p50/p99
   come from wrk's --latency distribution. Before each run it waits (--quiet-wait) for
   other processes to leave the CPU and prints how busy the machine was. Without wrk, a
   Python http.client thread pool stands in (it shares the 2 cores with the server, so it
   under-reports);
5. times single requests on the idle servers (searches with text and filters, the
   explore map, page renders) to find slow paths;
6. tops up to --requests-for-rss requests (and at least 1,000 more) with a mix (product
   pages, searches, thumbnails, 404s, the explore colour-by callback, page renders) and
   reads each worker's RSS, PSS and USS and the master's RSS;
7. prints a table per size, the new/old ratios, and PASS/FAIL for the targets: at 300k
   start-up < 5 s, worker RSS < 250 MiB, product p99 < 50 ms and >= 500 req/s; at 10k
   no worse than the old app. The table shows the product run with the most req/s (the
   least disturbed by other processes); every run is printed above it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_first_paint import cpu_line, versions_line  # noqa: E402

from pipeline.shop_index import INDEX_FILE, index_is_current  # noqa: E402
from tests.fake_precomputed import DEFAULT_ATTRS, make_fake_precomputed  # noqa: E402

MiB = 1024 * 1024
OUT = ROOT / "bench" / "out"
OLD_COMMIT = "e70a33f"
K = 10
CALLBACK_URL = "/_dash-update-component"
ID = "@ID@"  # replaced by a random product id in every request
THREADS = 2  # wrk threads
NO_MATCH_WORD = "xyzzy"
SEARCH_WORDS = ["red", "blue", "black", "shirt", "shirts", "jeans", "men", "women", "watch",
                "watches", "sneakers", "slim", "premium", "vint", "red shirt", "blue jeans",
                "classic black", "urban green sneakers", NO_MATCH_WORD]
TARGET_STARTUP_S = 5.0
TARGET_RSS_MIB = 250.0
TARGET_P99_MS = 50.0
TARGET_RPS = 500.0
SAME_WITHIN = 0.10  # "no worse than old" allows this much noise


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Req:
    """One request template: `ID` in the path or body becomes a random product id."""

    method: str
    path: str
    body: str = ""

    def line(self) -> str:
        """The request as a line of the wrk script's request file."""
        return f"{self.method} {self.path} {self.body}".rstrip()


def post(payload: dict[str, Any]) -> Req:
    """A Dash callback request."""
    return Req("POST", CALLBACK_URL, json.dumps(payload, separators=(",", ":")))


def split_output(output: str) -> list[str]:
    """A callback key ("a.b" or "..a.b...c.d..") -> its outputs."""
    if output.startswith("..") and output.endswith(".."):
        return output[2:-2].split("...")
    return [output]


def _parse_id(raw: str) -> Any:
    return json.loads(raw) if raw.startswith("{") else raw


def _is_wildcard(cid: Any) -> bool:
    return isinstance(cid, dict) and any(isinstance(v, list) for v in cid.values())


@dataclass
class Callbacks:
    """Builds callback requests the way the browser does, from an app's own
    /_dash-dependencies (so the old app's and the new app's differing outputs, states and
    hashed duplicate outputs are right without hard-coding either)."""

    deps: list[dict[str, Any]]
    filter_ids: list[dict[str, Any]] = field(default_factory=list)

    @property
    def facets(self) -> list[str]:
        """Attribute names of the catalog filters, in page order."""
        return [str(f.get("attr")) for f in self.filter_ids]

    def find(self, output: str) -> dict[str, Any]:
        """The dependency entry that has `output` ("id.property") among its outputs."""
        for dep in self.deps:
            if output in (o.split("@")[0] for o in split_output(dep["output"])):
                return dep
        raise KeyError(f"no callback outputs {output}")

    def payload(self, output: str, values: dict[str, Any], changed: str) -> dict[str, Any]:
        """The request for the callback that has `output`; `values` maps "id.prop" to a
        value, and "<pattern type>.<prop>" to {attr: value} for ALL-pattern components."""
        dep = self.find(output)

        def expand(raw: str, prop: str, with_value: bool) -> Any:
            cid = _parse_id(raw)
            if _is_wildcard(cid):
                chosen = values.get(f"{cid['type']}.{prop}", {})
                return [{"id": f, "property": prop,
                         **({"value": chosen.get(f.get("attr"), [])} if with_value else {})}
                        for f in self.filter_ids if f.get("type") == cid["type"]]
            entry: dict[str, Any] = {"id": cid, "property": prop}
            if with_value:
                entry["value"] = values.get(f"{raw}.{prop}")
            return entry

        outputs = []
        for out in split_output(dep["output"]):
            raw, prop = out.split("@")[0].rsplit(".", 1)
            outputs.append(expand(raw, prop, False))
        return {
            "output": dep["output"],
            "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": [expand(i["id"], i["property"], True) for i in dep["inputs"]],
            "state": [expand(x["id"], x["property"], True) for x in dep.get("state", [])],
            "changedPropIds": [changed],
        }

    def render(self, pathname: str) -> dict[str, Any]:
        """The router callback for a URL path."""
        return self.payload("page-content.children",
                            {"url.pathname": pathname, "url.search": ""}, "url.pathname")

    def search(self, q: str = "", sort: str = "featured",
               values: dict[str, list[str]] | None = None, page: int = 1) -> dict[str, Any]:
        """The catalog callback after typing `q` (with filters, sort and page)."""
        return self.payload("catalog-grid.children", {
            "catalog-url.search": "", "catalog-url.pathname": "/", "catalog-search.value": q,
            "catalog-sort.value": sort, "catalog-filter.value": values or {},
            "catalog-pagination.active_page": page,
        }, "catalog-search.value")

    def explore(self, attr: str | None) -> dict[str, Any]:
        """The explore page's colour-by callback."""
        return self.payload("explore-graph.figure", {"explore-colour.value": attr},
                            "explore-colour.value")


@dataclass
class Workload:
    """The requests an app is loaded with."""

    cb: Callbacks

    @property
    def facets(self) -> list[str]:
        """The catalog page's filter attributes."""
        return self.cb.facets

    def render(self, pathname: str) -> dict[str, Any]:
        """The router callback for a URL path."""
        return self.cb.render(pathname)

    def product(self) -> list[Req]:
        """The product-page callback for a random product."""
        return [post(self.render(f"/product/{ID}"))]

    def searches(self, seed: int = 0) -> list[Req]:
        """Catalog searches: a word, a third with a filter, some sorted or paged."""
        rng = random.Random(seed)
        reqs = []
        for i in range(240):
            q = SEARCH_WORDS[i % len(SEARCH_WORDS)]
            values: dict[str, list[str]] = {}
            if self.facets and i % 3 == 0:  # sorted: the same requests for both apps
                name = rng.choice(sorted(self.facets))
                choices = DEFAULT_ATTRS.get(name, [])
                if choices:
                    values[name] = rng.sample(choices, rng.choice((1, 1, 2)))
            sort = rng.choice(["featured"] * 5 + ["price-asc", "price-desc", "title"])
            page = rng.choice([1] * 6 + [2, 5])
            reqs.append(post(self.cb.search(q, sort, values, page)))
        return reqs

    def explore(self, attr: str | None) -> Req:
        """The explore page's colour-by callback."""
        return post(self.cb.explore(attr))

    def mix(self) -> list[Req]:
        """What a shop sees: mostly product pages and searches, some thumbnails, 404s,
        page renders and the explore map (weights are repetitions)."""
        attrs: list[str | None] = [*self.facets, "no-such-attribute"]
        return (
            self.product() * 50
            + self.searches(seed=1)[:25]
            + [Req("GET", f"/thumbs/{ID}.jpg")] * 8
            + [Req("GET", f"/product/{ID}"), Req("GET", "/no-such-page")]
            + [post(self.render("/no-such-page"))] * 3
            + [post(self.render("/")), post(self.render("/about")),
               post(self.render("/explore"))]
            + [self.explore(a) for a in attrs]
        )


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """gunicorn in its own process group; start-up timed from spawn to ready."""

    def __init__(self, name: str, argv: Sequence[str], cwd: Path, env: dict[str, str],
                 port: int, workers: int = 2, timeout_s: float = 300) -> None:
        self.name, self.port, self.workers = name, port, workers
        self.log: deque[str] = deque(maxlen=40)
        started = time.perf_counter()
        self.proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        threading.Thread(target=self._drain, daemon=True).start()
        self.first_200_s = self.workers_s = 0.0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name}: gunicorn exited ({self.proc.returncode}):\n"
                                   + "\n".join(self.log))
            now = time.perf_counter() - started
            if not self.workers_s and len(self.worker_procs()) >= workers:
                self.workers_s = now
            if not self.first_200_s and self._answers():
                self.first_200_s = time.perf_counter() - started
            if self.first_200_s and self.workers_s:
                break
            time.sleep(0.01)
        else:
            self.stop()
            raise RuntimeError(f"{name}: not ready within {timeout_s:.0f} s:\n"
                               + "\n".join(self.log))
        self.startup_s = max(self.first_200_s, self.workers_s)

    def _drain(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.log.append(line.rstrip())

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/about")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def worker_procs(self) -> list[psutil.Process]:
        """The master's children (gunicorn workers)."""
        try:
            return psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def settle(self, limit_s: float = 180) -> float:
        """Wait until the workers are idle (requests a load generator gave up on are still
        served after it stops); returns the seconds waited."""
        started = time.perf_counter()
        procs = self.worker_procs()
        for p in procs:
            p.cpu_percent(None)
        quiet = 0
        while time.perf_counter() - started < limit_s and quiet < 2:
            time.sleep(0.25)
            busy = 0.0
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    busy += p.cpu_percent(None)
            quiet = quiet + 1 if busy < 10 else 0
        return time.perf_counter() - started

    def memory(self) -> dict[str, Any]:
        """RSS/PSS/USS in MiB of each worker, and the master's RSS."""
        workers = []
        for kid in self.worker_procs():
            try:
                info = kid.memory_full_info()
                workers.append({"pid": kid.pid, "rss": info.rss / MiB,
                                "pss": getattr(info, "pss", 0) / MiB, "uss": info.uss / MiB})
            except (psutil.AccessDenied, psutil.NoSuchProcess):
                workers.append({"pid": kid.pid, "rss": kid.memory_info().rss / MiB,
                                "pss": 0.0, "uss": 0.0})
        master = psutil.Process(self.proc.pid).memory_info().rss / MiB
        return {"workers": workers, "master_rss": master}

    def stop(self) -> None:
        """Stop the whole process group (TERM, then KILL)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stray workers of a dead master


def start_new(folder: Path) -> Server:
    """The new app exactly as the Procfile starts it."""
    port = free_port()
    env = {**os.environ, "LOOKALIKE_PRECOMPUTED": str(folder)}
    env.pop("PYTHONPATH", None)
    argv = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "python:shopfront.gunicorn_conf",
            "app:server", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--access-logfile", "/dev/null"]
    return Server("new", argv, ROOT, env, port)


def extract_old_app(tmp: Path) -> Path:
    """app.py and pipeline/ of the old in-memory app (git), assets/ from the tree."""
    app_dir = tmp / "old-app"
    (app_dir / "pipeline").mkdir(parents=True)

    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{OLD_COMMIT}:{path}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    (app_dir / "app.py").write_text(show("app.py"))
    names = subprocess.run(["git", "ls-tree", "--name-only", OLD_COMMIT, "pipeline/"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        (app_dir / name).write_text(show(name))
    shutil.copytree(ROOT / "assets", app_dir / "assets")
    return app_dir


def start_old(app_dir: Path, folder: Path) -> Server:
    """The old app as its Procfile started it."""
    port = free_port()
    env = {**os.environ, "LOOKALIKE_PRECOMPUTED": str(folder), "PYTHONPATH": str(app_dir)}
    argv = [str(ROOT / ".venv" / "bin" / "gunicorn"), "app:server", "--preload",
            "--workers", "2", "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"]
    return Server("old", argv, app_dir, env, port)


# ----------------------------------------------------------------------------- clients


@dataclass
class Load:
    """One load run: throughput and latency distribution."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-2xx/3xx responses and socket errors
    note: str = ""

    def line(self) -> str:
        """One printable line."""
        return (f"p50 {self.p50_ms:7.1f} ms  p99 {self.p99_ms:7.1f} ms  {self.rps:6.0f} req/s "
                f"({self.requests:,} in {self.seconds:.1f} s, {self.bad} non-2xx/errors)"
                + (f" {self.note}" if self.note else ""))


WRK_LUA = r"""
-- written by bench/bench_app.py: one random request template and product id per request
local specs_file = [==[%(specs)s]==]
local ids_file = [==[%(ids)s]==]
local specs, ids = {}, {}
local n_threads = 0
function setup(thread)
  n_threads = n_threads + 1
  thread:set("seed", n_threads * 7919)
end
function init(args)
  math.randomseed(seed or 1)
  for line in io.lines(ids_file) do ids[#ids + 1] = line end
  for line in io.lines(specs_file) do
    local method, path, body = line:match("^(%%u+) (%%S+) ?(.*)$")
    local headers = {}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    if method == "POST" then headers["Content-Type"] = "application/json" end
    specs[#specs + 1] = {method, path, body, headers}
  end
end
function request()
  local s = specs[math.random(#specs)]
  local id = ids[math.random(#ids)]
  local path = s[2]:gsub("@ID@", id)
  local body = nil
  if s[1] == "POST" then body = s[3]:gsub("@ID@", id) end
  local headers = {}
  for k, v in pairs(s[4]) do headers[k] = v end
  return wrk.format(s[1], path, headers, body)
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> Load:
    """Requests, Requests/sec and the 50%/99% of wrk --latency's distribution."""
    dist = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (dist and total and rps):
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    if errors:
        bad += sum(int(g) for g in errors.groups())
    return Load(int(total.group(1)), _ms(total.group(2) + total.group(3)) / 1e3,
                float(rps.group(1)), _ms(dist["50"]), _ms(dist["99"]), bad)


class Loader:
    """Runs a load (wrk, or the Python fallback) against a server."""

    def __init__(self, workdir: Path, ids: list[str], connections: int) -> None:
        self.workdir, self.ids, self.connections = workdir, ids, connections
        self.use_wrk = shutil.which("wrk") is not None
        self.ids_file = workdir / "ids.txt"
        self.ids_file.write_text("\n".join(ids) + "\n")
        self._n = 0

    def run(self, server: Server, reqs: list[Req], seconds: float,
            headers: Sequence[str] = ()) -> Load:
        """Random requests from `reqs` for `seconds`."""
        if not self.use_wrk:
            return self._python(server, reqs, seconds, headers)
        self._n += 1
        specs = self.workdir / f"specs-{self._n}.txt"
        specs.write_text("\n".join(r.line() for r in reqs) + "\n")
        script = self.workdir / f"load-{self._n}.lua"
        script.write_text(WRK_LUA % {"specs": specs, "ids": self.ids_file})
        argv = ["wrk", f"-t{THREADS}", f"-c{self.connections}", f"-d{max(1, round(seconds))}s",
                "--timeout", "10s", "--latency", "-s", str(script)]
        for h in headers:
            argv += ["-H", h]
        out = subprocess.run([*argv, f"http://127.0.0.1:{server.port}/"], capture_output=True,
                             text=True, timeout=seconds + 120)
        result = parse_wrk(out.stdout + out.stderr)
        waited = server.settle()
        if waited > 1:
            result.note = f"(workers busy {waited:.0f} s after wrk stopped)"
        return result

    def _python(self, server: Server, reqs: list[Req], seconds: float,
                headers: Sequence[str]) -> Load:
        """Fallback: one keep-alive http.client connection per thread."""
        extra = dict(h.split(": ", 1) for h in headers)
        latencies: list[float] = []
        bad = [0]
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            mine, errors = [], 0
            while time.perf_counter() < stop_at:
                r = rng.choice(reqs)
                pid = rng.choice(self.ids)
                t0 = time.perf_counter()
                try:
                    hdrs = {**extra, "Content-Type": "application/json"} if r.body else extra
                    conn.request(r.method, r.path.replace(ID, pid),
                                 r.body.replace(ID, pid) or None, hdrs)
                    resp = conn.getresponse()
                    resp.read()
                    errors += resp.status >= 400
                except OSError:
                    errors += 1
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                mine.append((time.perf_counter() - t0) * 1e3)
            with lock:
                latencies.extend(mine)
                bad[0] += errors

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(self.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        latencies.sort()
        pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
                ) if latencies else (lambda q: 0.0)
        server.settle()
        return Load(len(latencies), elapsed, len(latencies) / elapsed, pick(0.50), pick(0.99),
                    bad[0], "(Python client)")


def request_once(port: int, req: Req, pid: str = "") -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Content-Type": "application/json"} if req.body else {}
        conn.request(req.method, req.path.replace(ID, pid), req.body.replace(ID, pid) or None,
                     headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def find_filter_ids(tree: Any) -> list[dict[str, Any]]:
    """The id of every catalog-filter component in a rendered layout, in page order."""
    found: list[dict[str, Any]] = []
    if isinstance(tree, dict):
        props = tree.get("props")
        cid = props.get("id") if isinstance(props, dict) else None
        if isinstance(cid, dict) and cid.get("type") == "catalog-filter":
            found.append(cid)
        for value in tree.values():
            found.extend(find_filter_ids(value))
    elif isinstance(tree, list):
        for value in tree:
            found.extend(find_filter_ids(value))
    return found


@dataclass
class Probe:
    """Single requests on an otherwise idle server."""

    name: str
    first_ms: float
    median_ms: float
    max_ms: float
    kib: float
    n: int


def probe(port: int, name: str, req: Req, ids: list[str], n: int = 15,
          cap_s: float = 20.0) -> Probe:
    """Time up to `n` sequential requests (keep-alive), at most `cap_s` seconds."""
    rng = random.Random(name)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, sizes = [], []
    started = time.perf_counter()
    try:
        for _ in range(n):
            pid = rng.choice(ids)
            headers = {"Content-Type": "application/json"} if req.body else {}
            t0 = time.perf_counter()
            conn.request(req.method, req.path.replace(ID, pid),
                         req.body.replace(ID, pid) or None, headers)
            resp = conn.getresponse()
            body = resp.read()
            times.append((time.perf_counter() - t0) * 1e3)
            sizes.append(len(body))
            if time.perf_counter() - started > cap_s:
                break
    finally:
        conn.close()
    return Probe(name, times[0], statistics.median(times), max(times),
                 statistics.mean(sizes) / 1024, len(times))


# ----------------------------------------------------------------------------- one app


@dataclass
class AppResult:
    """Everything measured for one app at one size."""

    app: str
    startup_s: float
    first_200_s: float
    workers_s: float
    products: list[Load]
    product_br: Load | None
    search: Load
    mix: list[Load]
    probes: list[Probe]
    memory: dict[str, Any]
    requests_sent: int

    @property
    def product(self) -> Load:
        """The least disturbed product run (highest req/s)."""
        return max(self.products, key=lambda r: r.rps)

    @property
    def worker_rss(self) -> float:
        """The largest worker RSS, MiB."""
        return max((w["rss"] for w in self.memory["workers"]), default=0.0)


def machine_busy() -> str:
    """CPU use of the whole machine over 0.5 s and the load average."""
    busy = psutil.cpu_percent(interval=0.5)
    return f"machine {busy:.0f}% busy, load {os.getloadavg()[0]:.1f}"


def wait_quiet(limit_s: float, busy_below: float = 25.0) -> str:
    """Wait (at most `limit_s`) until other processes leave the CPU mostly idle, so that a
    timed run is not shared with them; says how busy the machine was when it started."""
    started = time.perf_counter()
    busy = psutil.cpu_percent(interval=1.0)
    while busy >= busy_below and time.perf_counter() - started < limit_s:
        busy = psutil.cpu_percent(interval=1.0)
    waited = time.perf_counter() - started
    return (f"machine {busy:.0f}% busy at start" + (f" (waited {waited:.0f} s)"
                                                     if waited > 1.5 else ""))


class AppRun:
    """One running app and what has been measured on it so far."""

    def __init__(self, server: Server, ids: list[str]) -> None:
        self.server, self.name, self.port = server, server.name, server.port
        print(f"  [{self.name}] start-up {server.startup_s:.2f} s (first 200 at "
              f"{server.first_200_s:.2f} s, both workers forked at {server.workers_s:.2f} s)")
        # The app's callbacks as the browser learns them, and the catalog page's filters.
        _, body = request_once(self.port, Req("GET", "/_dash-dependencies"))
        cb = Callbacks(json.loads(body))
        _, body = request_once(self.port, post(cb.render("/")))
        cb.filter_ids = find_filter_ids(json.loads(body))
        self.workload = Workload(cb)
        self.sent = 3  # readiness, dependencies, catalog page
        facets = self.workload.facets
        checks = [("product", self.workload.product()[0], ids[1], b"% match"),
                  ("search", self.workload.searches()[0], "", b"catalog-grid"),
                  ("explore", self.workload.explore(facets[0] if facets else None), "",
                   b"explore-graph")]
        for label, req, pid, needle in checks:  # each callback works before any timing
            status, body = request_once(self.port, req, pid)
            if status != 200 or needle not in body:
                raise RuntimeError(f"{self.name}: {label} callback gave {status}: "
                                   f"{body[:300]!r}\n" + "\n".join(server.log))
        self.sent += len(checks)
        print(f"  [{self.name}] callbacks answer; catalog filters: {', '.join(facets) or 'none'}")
        self.products: list[Load] = []
        self.product_br: Load | None = None
        self.search: Load | None = None
        self.probes: list[Probe] = []
        self.mixes: list[Load] = []
        self.memory: dict[str, Any] = {}

    def load(self, loader: Loader, label: str, reqs: list[Req], seconds: float,
             quiet_s: float, headers: Sequence[str] = ()) -> Load:
        """A timed load run, printed."""
        before = wait_quiet(quiet_s) if quiet_s else machine_busy()
        run = loader.run(self.server, reqs, seconds, headers)
        self.sent += run.requests
        print(f"  [{self.name}] {label:<34} {run.line()}; {before}")
        return run

    def run_probes(self, ids: list[str]) -> None:
        """Single requests on the idle server, for slow paths."""
        wl, cb = self.workload, self.workload.cb
        named = sorted(wl.facets)  # the same probes for both apps (their filter order differs)
        reqs: list[tuple[str, Req]] = [
            ("product-page callback", wl.product()[0]),
            ("search 'red'", post(cb.search(q="red"))),
            ("search 'urban green sneak'", post(cb.search(q="urban green sneak"))),
            (f"search '{NO_MATCH_WORD}' (no match)", post(cb.search(q=NO_MATCH_WORD))),
            ("search 'e' (1-letter prefix)", post(cb.search(q="e"))),
            ("search 'red', sort price-asc", post(cb.search(q="red", sort="price-asc"))),
        ]
        if named:
            one = {named[0]: DEFAULT_ATTRS.get(named[0], ["?"])[:1]}
            every = {f: DEFAULT_ATTRS.get(f, ["?"])[:2] for f in named}
            reqs += [
                (f"filter {named[0]} only", post(cb.search(values=one))),
                ("filter all facets (2 values each)", post(cb.search(values=every))),
                ("'red' + all filters", post(cb.search(q="red", values=every))),
                ("'shirt' + filter, price-asc", post(cb.search(q="shirt", values=one,
                                                               sort="price-asc"))),
                ("filter, page 200", post(cb.search(values=one, page=200))),
            ]
        reqs += [
            ("no search, sort title, page 500", post(cb.search(sort="title", page=500))),
            ("router: / (catalog page)", post(wl.render("/"))),
            ("router: /explore", post(wl.render("/explore"))),
            ("router: /no-such-page", post(wl.render("/no-such-page"))),
        ]
        reqs += [(f"explore colour-by {a}", wl.explore(a)) for a in named[:2]]
        reqs += [("GET /product/<id> (document)", Req("GET", f"/product/{ID}")),
                 ("GET /thumbs/<id>.jpg (404: no file)", Req("GET", f"/thumbs/{ID}.jpg"))]
        for label, req in reqs:
            p = probe(self.port, label, req, ids)
            self.sent += p.n
            self.probes.append(p)

    def top_up(self, loader: Loader, target: int) -> None:
        """The mixed load until `target` requests (at least 1,000 more), then memory."""
        rate = max(50.0, min(r.rps for r in self.products) / 2) if self.products else 50.0
        while self.sent < target or not self.mixes:
            need = max(target - self.sent, 1000)
            seconds = min(120.0, max(2.0, need / rate * 1.2))
            run = loader.run(self.server, self.workload.mix(), seconds)
            self.sent += run.requests
            self.mixes.append(run)
            rate = max(10.0, run.rps)
            print(f"  [{self.name}] {'mixed top-up (404s expected)':<34} {run.line()}")
        self.memory = self.server.memory()
        rss = ", ".join(f"{w['rss']:.0f} (PSS {w['pss']:.0f}, USS {w['uss']:.0f})"
                        for w in self.memory["workers"])
        print(f"  [{self.name}] after {self.sent:,} requests: worker RSS MiB {rss}; "
              f"master RSS {self.memory['master_rss']:.0f}")

    def result(self) -> AppResult:
        """What was measured."""
        s = self.server
        assert self.search is not None
        return AppResult(self.name, s.startup_s, s.first_200_s, s.workers_s, self.products,
                         self.product_br, self.search, self.mixes, self.probes, self.memory,
                         self.sent)


def measure_size(starters: list[Callable[[], Server]], loader: Loader, ids: list[str],
                 args: argparse.Namespace) -> list[AppResult]:
    """Start every app (one after the other, each start-up timed alone), then run each
    phase on every app in turn, so that both face the same machine load; always stop."""
    servers: list[Server] = []
    try:
        runs = []
        for start in starters:
            wait_quiet(args.quiet_wait)
            servers.append(start())
            runs.append(AppRun(servers[-1], ids))
        for run in runs:
            warm = loader.run(run.server, run.workload.product(), 2)
            run.sent += warm.requests
        for i in range(args.product_runs):
            for run in runs:
                run.products.append(run.load(loader, f"product-page callback, run {i + 1}",
                                             run.workload.product(), args.duration,
                                             args.quiet_wait))
        if not args.no_br:
            for run in runs:
                run.product_br = run.load(loader, "product-page, Accept-Encoding br",
                                          run.workload.product(), args.duration,
                                          args.quiet_wait, ["Accept-Encoding: br, gzip"])
        for run in runs:
            run.search = run.load(loader, "catalog search callback", run.workload.searches(),
                                  args.duration, args.quiet_wait)
        for run in runs:
            run.run_probes(ids)
        for run in runs:
            run.top_up(loader, args.requests_for_rss)
        return [run.result() for run in runs]
    finally:
        for server in servers:
            server.stop()


# ----------------------------------------------------------------------------- folders


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk under `path`."""
    total = 0
    for base, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(base, f))
            total += st.st_blocks * 512
    return total


def fake_folder(n: int) -> Path:
    """A cached fake contract-2 folder with `n` products and a current shop.sqlite."""
    folder = OUT / f"fake-{n}-k{K}"
    index = folder / INDEX_FILE
    note = folder.with_name(folder.name + ".generated.txt")
    if (folder / "meta.json").is_file() and index.is_file() and index_is_current(index, folder):
        took = note.read_text().strip() if note.is_file() else "?"
        print(f"  folder {folder.relative_to(ROOT)} (cached; generated in {took} s)")
    else:
        t0 = time.perf_counter()
        make_fake_precomputed(folder, n, k=K, thumbs=False)
        took = f"{time.perf_counter() - t0:.1f}"
        note.write_text(took + "\n")
        print(f"  generated {folder.relative_to(ROOT)} in {took} s")
    print(f"  {disk_usage(folder) / MiB:.1f} MiB on disk, of which {INDEX_FILE} "
          f"{index.stat().st_size / MiB:.1f} MiB")
    return folder


def product_ids(folder: Path) -> list[str]:
    """Every product id, from the folder's index."""
    con = sqlite3.connect(f"file:{folder / INDEX_FILE}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT id FROM products ORDER BY row")]
    finally:
        con.close()


# ----------------------------------------------------------------------------- report


def machine_header() -> None:
    """CPU model and flags, Python and package versions, load generator."""
    print(cpu_line())
    versions = versions_line(("dash", "dash-bootstrap-components", "flask", "gunicorn",
                              "psutil"))
    print(f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; {versions}")
    wrk = shutil.which("wrk")
    if wrk:
        head = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        print(f"load generator: {head.split(' Copyright')[0]}, {THREADS} threads")
    else:
        print("load generator: wrk NOT FOUND - Python http.client threads instead (they share "
              "the 2 cores with the server: figures under-report)")
    head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "app.py", "shopfront",
                            "pipeline"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    print(f"new app: {head[:90]}" + (" (+ uncommitted changes)" if dirty else "")
          + f"; old app: {OLD_COMMIT}")
    print(machine_busy())


def ratio(new: float, old: float) -> str:
    """new/old as text."""
    return f"{new / old:.2f}x" if old else "n/a"


def print_table(n: int, results: list[AppResult]) -> None:
    """The per-size table and the new/old ratios."""
    print(f"\n=== {n:,} products ===")
    print(f"{'app':<4} {'start-up s':>10} {'RSS/worker MiB':>15} {'PSS':>5} {'USS':>5} "
          f"{'master':>6} {'requests':>8} | {'product p50':>11} {'p99 ms':>7} {'req/s':>6} | "
          f"{'search p50':>10} {'p99 ms':>7} {'req/s':>6}")
    for r in results:
        w = r.memory["workers"]
        pss = max((x["pss"] for x in w), default=0)
        uss = max((x["uss"] for x in w), default=0)
        print(f"{r.app:<4} {r.startup_s:>10.2f} {r.worker_rss:>15.0f} {pss:>5.0f} {uss:>5.0f} "
              f"{r.memory['master_rss']:>6.0f} {r.requests_sent:>8,} | "
              f"{r.product.p50_ms:>11.1f} {r.product.p99_ms:>7.1f} {r.product.rps:>6.0f} | "
              f"{r.search.p50_ms:>10.1f} {r.search.p99_ms:>7.1f} {r.search.rps:>6.0f}")
    for r in results:
        if r.product_br:
            print(f"{r.app:<4} product callback with Accept-Encoding br: "
                  f"{r.product_br.line()}")
    if len(results) == 2:
        new, old = results
        print(f"new/old: start-up {ratio(new.startup_s, old.startup_s)}, worker RSS "
              f"{ratio(new.worker_rss, old.worker_rss)}, product p50 "
              f"{ratio(new.product.p50_ms, old.product.p50_ms)} p99 "
              f"{ratio(new.product.p99_ms, old.product.p99_ms)} req/s "
              f"{ratio(new.product.rps, old.product.rps)}, search p50 "
              f"{ratio(new.search.p50_ms, old.search.p50_ms)} p99 "
              f"{ratio(new.search.p99_ms, old.search.p99_ms)} req/s "
              f"{ratio(new.search.rps, old.search.rps)}")
    print("single requests on the idle server (ms: first / median / max, KiB per response):")
    by_app = {r.app: {p.name: p for p in r.probes} for r in results}
    names = list(dict.fromkeys(p.name for r in results for p in r.probes))
    for name in names:
        cells = []
        for r in results:
            p = by_app[r.app].get(name)
            cells.append(f"{r.app} {p.first_ms:7.1f} /{p.median_ms:7.1f} /{p.max_ms:7.1f} "
                         f"{p.kib:8.1f} KiB" if p else f"{r.app} {'-':>35}")
        print(f"  {name:<36} " + "   ".join(cells))


def verdicts(all_results: dict[int, list[AppResult]]) -> None:
    """PASS/FAIL per target."""
    print("\n=== targets ===")
    top = max(all_results)
    new = all_results[top][0]
    if top != 300_000:
        print(f"(the 300k targets, checked at the largest size run: {top:,})")

    def line(ok: bool, text: str) -> None:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")

    line(new.startup_s < TARGET_STARTUP_S,
         f"{top:,}: start-up {new.startup_s:.2f} s < {TARGET_STARTUP_S:g} s")
    line(new.worker_rss < TARGET_RSS_MIB,
         f"{top:,}: worker RSS {new.worker_rss:.0f} MiB < {TARGET_RSS_MIB:g} MiB "
         f"after {new.requests_sent:,} requests")
    line(new.product.p99_ms < TARGET_P99_MS,
         f"{top:,}: product-page callback p99 {new.product.p99_ms:.1f} ms < "
         f"{TARGET_P99_MS:g} ms")
    line(new.product.rps >= TARGET_RPS,
         f"{top:,}: product-page callback {new.product.rps:.0f} req/s >= {TARGET_RPS:g}")
    small = min(all_results)
    if len(all_results[small]) < 2:
        print(f"(no old app at {small:,}: --skip-old)")
        return
    new, old = all_results[small]
    print(f"{small:,} vs the old app (no worse = within {SAME_WITHIN:.0%} or better):")
    lower_better = [("start-up", new.startup_s, old.startup_s),
                    ("worker RSS", new.worker_rss, old.worker_rss),
                    ("product p50", new.product.p50_ms, old.product.p50_ms),
                    ("product p99", new.product.p99_ms, old.product.p99_ms),
                    ("search p50", new.search.p50_ms, old.search.p50_ms),
                    ("search p99", new.search.p99_ms, old.search.p99_ms)]
    for label, a, b in lower_better:
        line(a <= b * (1 + SAME_WITHIN), f"{label}: new/old {ratio(a, b)}")
    for label, a, b in [("product req/s", new.product.rps, old.product.rps),
                        ("search req/s", new.search.rps, old.search.rps)]:
        line(a >= b * (1 - SAME_WITHIN), f"{label}: new/old {ratio(a, b)}")


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,300000",
                        help="comma-separated product counts")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests-for-rss", type=int, default=10_000,
                        help="requests sent before worker memory is read")
    parser.add_argument("--product-runs", type=int, default=2,
                        help="product-page runs (the table shows the least disturbed)")
    parser.add_argument("--no-br", action="store_true",
                        help="skip the product run with Accept-Encoding: br, gzip")
    parser.add_argument("--skip-old", action="store_true", help="do not run the old app")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="before each timed run, wait up to this long for other processes "
                             "to leave the CPU (< 25%% busy); 0: do not wait")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    began = time.perf_counter()
    machine_header()
    print(f"runs: {args.duration:g} s, {args.connections} connections; memory read after "
          f">= {args.requests_for_rss:,} requests")
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[int, list[AppResult]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        workdir = Path(tmp)
        old_dir = None if args.skip_old else extract_old_app(workdir)
        for n in sizes:
            print(f"\n--- {n:,} products ---")
            folder = fake_folder(n)
            ids = product_ids(folder)
            loader = Loader(workdir, ids, args.connections)
            starters: list[Callable[[], Server]] = [lambda f=folder: start_new(f)]
            if old_dir is not None:
                starters.append(lambda f=folder, d=old_dir: start_old(d, f))
            results[n] = measure_size(starters, loader, ids, args)
    for n in sizes:
        print_table(n, results[n])
    verdicts(results)
    print(f"\ntotal run time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
