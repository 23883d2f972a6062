"""Slow clients against the production server (gunicorn as the Procfile runs it, 2
workers, 127.0.0.1, an ephemeral port): connections that send their headers or their
body a byte at a time hold no worker, and the server's deadlines close them."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopfront.gunicorn_conf import keepalive
from shopfront.web import body_seconds
from tests.dash_http import CALLBACK_URL, catalog_payload
from tests.gunicorn_server import gunicorn
from tests.slow_clients import SLOW_BODY_BYTES, slow_clients

N_SLOW = 20  # of each kind; bench/bench_slow_clients.py holds 50 + 50
REQUEST_TIMEOUT = 10  # generous: a served request takes milliseconds


@pytest.fixture(scope="module")
def port(fake_folder: Path) -> Iterator[int]:
    """The Procfile's server on the fake folder (2 workers), once it answers."""
    with gunicorn(fake_folder, "--access-logfile", "/dev/null") as port:
        for _ in range(100):
            try:
                request(port, "GET", "/about")
                break
            except OSError:
                pass
        yield port


def request(port: int, method: str, path: str, body: bytes | None = None) -> int:
    """One request on a fresh connection; its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_shoppers_are_served_while_slow_clients_hold_connections(port: int) -> None:
    callback = json.dumps(catalog_payload(["gender", "articleType", "baseColour"],
                                          q="red")).encode()
    statuses = []
    with slow_clients("127.0.0.1", port, N_SLOW, N_SLOW) as clients:
        for i in range(30):  # about 3 s of shopping while the slow sockets are open
            path = ("/about", "/product/p001", "/?q=red")[i % 3]
            statuses.append(request(port, "GET", path))
            statuses.append(request(port, "POST", CALLBACK_URL, callback))
            if i == 0:
                open_meanwhile = len(clients.connections)
    assert statuses == [200] * 60
    assert open_meanwhile == 2 * N_SLOW  # the slow clients really were there meanwhile


def test_slow_clients_are_closed_by_the_deadlines(port: int) -> None:
    header_deadline = keepalive
    body_deadline = body_seconds(SLOW_BODY_BYTES)
    with slow_clients("127.0.0.1", port, 4, 4, every=0.5) as clients:
        for _ in range(int(body_deadline + 8)):
            if not clients.connections:
                break
            request(port, "GET", "/about")  # and meanwhile the site answers
            time.sleep(1)
        ended = list(clients.ended)
        left = len(clients.connections)
    assert left == 0, f"{left} slow connections still open after {body_deadline + 8:.0f} s"
    for conn in ended:
        lifetime = conn.closed - conn.opened  # type: ignore[operator]
        deadline = header_deadline if conn.kind == "header" else body_deadline
        assert deadline - 1 <= lifetime <= deadline + 3, (conn.kind, lifetime)
        if conn.kind == "body" and conn.answer:
            assert conn.answer.startswith(b"HTTP/1.1 408"), conn.answer[:80]
