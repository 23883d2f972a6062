"""The host names the site answers as ($LOOKALIKE_HOSTS), so a client's Host or
X-Forwarded-Host header never ends up in a redirect or an OpenGraph URL.

A shared cache keyed by path alone would otherwise serve a page whose `og:url` and
`og:image` point at whatever host one client sent (cache poisoning), and the HTTPS
redirect would send shoppers there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

HOSTS_ENV = "LOOKALIKE_HOSTS"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_PATTERN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")


class HostConfigError(ValueError):
    """$LOOKALIKE_HOSTS (or what needs it) is unusable; the message is one line."""


def parse_hosts(value: str | None) -> tuple[str, ...]:
    """The comma-separated host names of $LOOKALIKE_HOSTS, lower case, as a Host header
    carries them (`shop.example`, `localhost:8050`); () when unset. A scheme, path or
    anything else that is not a host name raises HostConfigError."""
    hosts: list[str] = []
    for entry in (value or "").split(","):
        host = entry.strip().lower().rstrip(".")
        if not entry.strip():
            continue
        if not HOST_PATTERN.fullmatch(host):
            raise HostConfigError(f"{HOSTS_ENV}: {entry.strip()!r} is not a host name "
                                  "(write shop.example or shop.example:8050, comma-separated)")
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def pick_host(requested: str, allowed: Sequence[str]) -> str:
    """The host to act as: the request's own if it is listed, else the first listed."""
    host = requested.strip().lower().rstrip(".")
    return host if host in allowed else allowed[0]


class PinnedHost:
    """WSGI middleware: the Host header replaced by an allowed host (`pick_host`) and any
    X-Forwarded-Host dropped, before Flask, flask-talisman or a page reads them."""

    def __init__(self, app: Callable[..., Iterable[bytes]], allowed: Sequence[str]) -> None:
        if not allowed:
            raise ValueError("PinnedHost needs at least one host")
        self.app = app
        self.allowed = tuple(allowed)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        """Serve the request as if it had named an allowed host."""
        environ["HTTP_HOST"] = pick_host(environ.get("HTTP_HOST", ""), self.allowed)
        environ.pop("HTTP_X_FORWARDED_HOST", None)
        return self.app(environ, start_response)
