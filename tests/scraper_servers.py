"""A scripted HTTP server on 127.0.0.1 for scraper tests: each path answers what the test
says (status, headers, body, optionally dripped a byte at a time), and every request is
logged with its arrival time. Stop it with ``server.stop()``."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


@dataclass
class Reply:
    """One answer: status, headers, body; ``drip`` seconds between single bytes (of the
    headers too when ``drip_headers``)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0
    drip_headers: bool = False
    ctype: str = "text/html; charset=utf-8"


Route = Reply | Callable[[int], Reply]  # a fixed reply, or one per request number (1, 2, ...)


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it."""

    at: float
    path: str
    user_agent: str


def png(colour: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> bytes:
    """A small PNG of one colour."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


class ScriptedServer(ThreadingHTTPServer):
    """Routes by exact path (query included when the route has one); 404 otherwise."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = dict(routes)
        self.log: list[Hit] = []
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def netloc(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        """Requested paths in arrival order."""
        return [h.path for h in sorted(self.log, key=lambda h: h.at)]

    def stop(self) -> None:
        """Shut down and close the socket."""
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.log.append(Hit(time.monotonic(), self.path, self.headers.get("User-Agent", "")))
            srv.counts[self.path] = n = srv.counts.get(self.path, 0) + 1
        route = srv.routes.get(self.path) or srv.routes.get(self.path.split("?")[0])
        if route is None:
            reply = Reply(404, b"not found")
        else:
            reply = route(n) if callable(route) else route
        head = [f"HTTP/1.1 {reply.status} X", f"Content-Type: {reply.ctype}",
                f"Content-Length: {len(reply.body)}",
                *(f"{k}: {v}" for k, v in reply.headers.items()), "", ""]
        data = "\r\n".join(head).encode() + reply.body
        try:
            if reply.drip:
                start = 0 if reply.drip_headers else len(data) - len(reply.body)
                self.wfile.write(data[:start])
                self.wfile.flush()
                for i in range(start, len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
