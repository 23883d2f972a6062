"""Slow HTTP clients for tests and bench/bench_slow_clients.py: connections that send
their request headers, or their request body, one byte at a time (slowloris, slow POST).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

SLOW_BODY_BYTES = 2000  # announced by each slow body; it never all arrives


@dataclass
class SlowConnection:
    """One slow client: what it is, when it connected, and how the server ended it."""

    kind: str  # "header" or "body"
    sock: socket.socket
    opened: float
    closed: float | None = None  # when the server closed it (EOF or reset)
    answer: bytes = b""  # what the server sent before closing, if anything


@dataclass
class SlowClients:
    """Slow connections held open against a server; `reconnect` opens a new one whenever
    the server closes one, as an attacker keeping up the pressure would."""

    host: str
    port: int
    reconnect: bool = False
    connections: list[SlowConnection] = field(default_factory=list)
    ended: list[SlowConnection] = field(default_factory=list)

    def open(self, kind: str) -> SlowConnection:
        """A new slow connection of `kind`, its first bytes sent."""
        sock = socket.create_connection((self.host, self.port), timeout=5)
        if kind == "header":
            first = f"GET /about HTTP/1.1\r\nHost: {self.host}\r\n".encode()
        else:
            first = (f"POST /_dash-update-component HTTP/1.1\r\nHost: {self.host}\r\n"
                     "Content-Type: application/json\r\n"
                     f"Content-Length: {SLOW_BODY_BYTES}\r\n\r\n{{").encode()
        sock.sendall(first)
        sock.setblocking(False)
        conn = SlowConnection(kind, sock, time.monotonic())
        self.connections.append(conn)
        return conn

    def tick(self) -> None:
        """Read what the server sent (noting closed connections), then send each open
        connection one more byte."""
        now = time.monotonic()
        for conn in list(self.connections):
            data = self._read(conn)
            if data == b"":  # the server closed it
                conn.closed = now
                conn.sock.close()
                self.connections.remove(conn)
                self.ended.append(conn)
                if self.reconnect:
                    with contextlib.suppress(OSError):
                        self.open(conn.kind)
                continue
            with contextlib.suppress(OSError):
                conn.sock.send(b"X" if conn.kind == "header" else b" ")

    @staticmethod
    def _read(conn: SlowConnection) -> bytes | None:
        """Whatever the server sent (kept in `answer`): b"" once it has closed the
        connection, None while it is open and silent."""
        while True:
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                return None
            except OSError:
                return b""
            if not data:
                return b""
            conn.answer += data

    def close(self) -> None:
        """Close every connection still open."""
        for conn in self.connections:
            conn.sock.close()
        self.connections.clear()


@contextlib.contextmanager
def slow_clients(host: str, port: int, n_header: int, n_body: int, every: float = 1.0,
                 reconnect: bool = False) -> Iterator[SlowClients]:
    """`n_header` slow-header and `n_body` slow-body connections, each sending a byte every
    `every` seconds from a background thread until the block ends."""
    clients = SlowClients(host, port, reconnect)
    for i in range(n_header + n_body):
        clients.open("header" if i < n_header else "body")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(every):
            clients.tick()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield clients
    finally:
        stop.set()
        thread.join(timeout=30)
        clients.close()
