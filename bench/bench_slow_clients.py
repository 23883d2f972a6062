"""Slow clients against the shop front: do shoppers still get answers while 50 connections
send their headers and 50 their request body a byte at a time?

    .venv/bin/python bench/bench_slow_clients.py [--precomputed precomputed/demo]
        [--slow-header 50] [--slow-body 50] [--duration 10] [--shoppers 4] [--skip-sync]

For each server, in one run: the Procfile's gunicorn (`-c python:shopfront.gunicorn_conf`,
gevent workers) and, as the naive baseline, the same with `--worker-class sync` (the
serving stack before issue 22), both with 2 workers on 127.0.0.1:
1. `--shoppers` threads request for `--duration` seconds, each on a new connection, one
   after the other: a product page, the catalog searching "red" and the product-page
   callback in turn (a per-request timeout of 5 s; an error, a timeout or a status other
   than 200 is a failure). p50/p99 of the answered requests, failures, requests/s;
2. the same while the slow clients hold their connections (each sends a byte a second
   and opens a new connection when the server closes one, as an attacker would), then
   how long the server let a slow connection live, by kind (the deadlines).
Target (issue 22): with 50 + 50 slow connections, p99 under 100 ms and no failure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_first_paint import cpu_line, versions_line  # noqa: E402

from tests.dash_http import CALLBACK_URL, catalog_payload, render_payload  # noqa: E402
from tests.gunicorn_server import gunicorn  # noqa: E402
from tests.slow_clients import SlowConnection, slow_clients  # noqa: E402

REQUEST_TIMEOUT = 5.0
TARGET_P99_MS = 100.0


@dataclass
class Load:
    """Normal requests of one phase: latencies of the answered ones, the failures."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average at the end (others' work too)

    def line(self) -> str:
        """"p50 / p99 / failures / req/s" of the phase."""
        failed = sum(self.failures.values())
        why = ", ".join(f"{n} {k}" for k, n in sorted(self.failures.items()))
        if not self.latencies:
            return (f"p50 - / p99 - ms, {failed} failed ({why}) of {failed}, "
                    f"0 answered/s (load {self.load:.2f})")
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
        total = len(ordered) + failed
        return (f"p50 {p50:6.1f} / p99 {p99:6.1f} ms, {failed} failed"
                f"{f' ({why})' if why else ''} of {total}, "
                f"{len(ordered) / self.seconds:6.1f} answered/s (load {self.load:.2f})")

    def meets_target(self) -> bool:
        """p99 under the target and nothing failed."""
        if self.failures or not self.latencies:
            return False
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000 < TARGET_P99_MS


def shopper_requests(folder: Path) -> list[tuple[str, str, bytes | None]]:
    """(method, path, body) a shopper sends, taken in turn."""
    products = json.loads((folder / "products.json").read_text())
    product = products[len(products) // 2]["id"]
    facets = ["gender", "articleType", "baseColour"]
    return [
        ("GET", f"/product/{product}", None),
        ("POST", CALLBACK_URL, json.dumps(catalog_payload(facets, q="red")).encode()),
        ("POST", CALLBACK_URL, json.dumps(render_payload(f"/product/{product}")).encode()),
    ]


def one_request(port: int, method: str, path: str, body: bytes | None) -> str | None:
    """One request on a new connection: None if answered 200, else why not."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        response.read()
        return None if response.status == 200 else f"status {response.status}"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    finally:
        conn.close()


def shop(port: int, requests: list[tuple[str, str, bytes | None]], shoppers: int,
         duration: float) -> Load:
    """`shoppers` threads sending `requests` in turn for `duration` seconds."""
    load = Load()
    lock = threading.Lock()
    end = time.monotonic() + duration

    def shopper(offset: int) -> None:
        i = offset
        while time.monotonic() < end:
            started = time.perf_counter()
            failure = one_request(port, *requests[i % len(requests)])
            took = time.perf_counter() - started
            with lock:
                if failure is None:
                    load.latencies.append(took)
                else:
                    load.failures[failure] = load.failures.get(failure, 0) + 1
            i += 1

    started = time.monotonic()
    threads = [threading.Thread(target=shopper, args=(n,)) for n in range(shoppers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.monotonic() - started
    load.load = os.getloadavg()[0]
    return load


def lifetimes(ended: list[SlowConnection], kind: str) -> str:
    """How long the server let slow connections of `kind` live."""
    lives = sorted(c.closed - c.opened for c in ended if c.kind == kind and c.closed)
    if not lives:
        return f"{kind}: none closed by the server"
    answers = {c.answer.split(b"\r\n", 1)[0].decode("latin-1") or "(closed, no answer)"
               for c in ended if c.kind == kind}
    return (f"{kind}: {len(lives)} closed by the server after {lives[0]:.1f}-{lives[-1]:.1f} s"
            f" (median {statistics.median(lives):.1f} s); answers: {', '.join(sorted(answers))}")


def run_server(name: str, folder: Path, options: list[str], args: argparse.Namespace,
               requests: list[tuple[str, str, bytes | None]]) -> tuple[Load, Load]:
    """Both phases against one server; prints them."""
    with gunicorn(folder, "--access-logfile", "/dev/null", "--workers", "2", *options) as port:
        wait_until_serving(lambda: one_request(port, "GET", "/about", None) is None)
        shop(port, requests, args.shoppers, 3.0)  # warm-up: first renders, compression
        quiet = shop(port, requests, args.shoppers, args.duration)
        print(f"  {name:6} no slow clients:     {quiet.line()}", flush=True)
        with slow_clients("127.0.0.1", port, args.slow_header, args.slow_body,
                          reconnect=True) as clients:
            time.sleep(1.5)  # every slow connection accepted and trickling
            attacked = shop(port, requests, args.shoppers, args.duration)
            time.sleep(max(0.0, args.hold - args.duration - 1.5))
            ended = list(clients.ended)
        print(f"  {name:6} {args.slow_header} + {args.slow_body} slow clients: "
              f"{attacked.line()}", flush=True)
        for kind in ("header", "body"):
            print(f"         slow {lifetimes(ended, kind)}", flush=True)
    return quiet, attacked


def wait_until_serving(ready: Callable[[], bool], seconds: float = 30) -> None:
    """Poll until the server answers (its workers boot after the master binds)."""
    end = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > end:
            raise SystemExit("bench_slow_clients: the server never answered")
        time.sleep(0.1)


def main() -> None:
    """Run the bench and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precomputed", type=Path, default=ROOT / "precomputed" / "demo")
    parser.add_argument("--slow-header", type=int, default=50)
    parser.add_argument("--slow-body", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of shopping per phase")
    parser.add_argument("--hold", type=float, default=16.0,
                        help="seconds the slow clients stay (at least --duration + 1.5; "
                             "longer than the body deadline shows it)")
    parser.add_argument("--shoppers", type=int, default=4, help="concurrent shoppers")
    parser.add_argument("--skip-sync", action="store_true", help="no naive baseline")
    args = parser.parse_args()
    print(cpu_line())
    print(versions_line(["gunicorn", "gevent", "flask", "dash"]))
    print(f"folder: {args.precomputed}; {args.shoppers} shoppers, {args.duration:.0f} s per "
          f"phase, a request timeout of {REQUEST_TIMEOUT:.0f} s; slow clients send a byte a "
          "second and reconnect when closed")
    requests = shopper_requests(args.precomputed)
    results = {"gevent": run_server("gevent", args.precomputed, [], args, requests)}
    if not args.skip_sync:
        results["sync"] = run_server("sync", args.precomputed, ["--worker-class", "sync"],
                                     args, requests)
    attacked = results["gevent"][1]
    verdict = "PASS" if attacked.meets_target() else "FAIL"
    print(f"target: with {args.slow_header} + {args.slow_body} slow clients, p99 < "
          f"{TARGET_P99_MS:.0f} ms and no failure (gevent, 2 workers): {verdict}")


if __name__ == "__main__":
    main()
