"""HTTP-level behaviour of the shop front's Flask server: limits, headers, compression,
caching and thumbnails. Everything a hostile or merely odd request meets first."""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import brotli
from dash.exceptions import DependencyException
from dash.fingerprint import check_fingerprint
from flask import Flask, Response, abort, jsonify, request, send_from_directory
from flask_compress import Compress
from flask_talisman import Talisman
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestTimeout
from werkzeug.middleware.proxy_fix import ProxyFix

from .hosts import HOSTS_ENV, HostConfigError, PinnedHost
from .shop import Shop

log = logging.getLogger("lookalike")

STATIC_MAX_REQUEST_BYTES = 256 * 2**10  # the largest real callback is a few KB
THUMB_MAX_AGE = 7 * 24 * 3600  # thumbnails only change with a rebuild
VERSIONED_MAX_AGE = 365 * 24 * 3600  # URLs that change whenever the file does
FORCE_HTTPS_ENV = "LOOKALIKE_FORCE_HTTPS"
COMPRESSED_ONCE = {"application/javascript", "text/javascript", "text/css", "image/svg+xml"}
MAX_PRECOMPRESSED = 256
BROTLI_11_MAX_BYTES = 300 * 2**10  # bigger files get brotli 9 (0.6 s for Plotly, 11% larger)
CALLBACK_PATH = "/_dash-update-component"
COMPONENT_SUITES = "/_dash-component-suites/"
# A request body must arrive within 10 s plus 1 s per 32 KiB (256 kbit/s, a poor mobile
# upload): a 3 KB callback 10 s, a 4 MB photo (dynamic mode) 2.3 minutes.
BODY_GRACE_SECONDS = 10.0
MIN_BODY_BYTES_PER_SECOND = 32 * 2**10


class BodyTooSlowError(Exception):
    """A request body did not arrive within its deadline (`body_seconds`)."""


def body_seconds(length: int) -> float:
    """How long a request body of `length` bytes may take to arrive."""
    return BODY_GRACE_SECONDS + length / MIN_BODY_BYTES_PER_SECOND


def deadline(seconds: float) -> contextlib.AbstractContextManager[Any]:
    """Raise BodyTooSlowError in the block after `seconds` where gevent runs the sockets
    (gunicorn's gevent worker, see gunicorn_conf); elsewhere (the development server, a
    test client) no deadline: only the gevent worker serves many slow clients at once."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return contextlib.nullcontext()
    import gevent  # loaded already: the worker patched the sockets with it

    return gevent.Timeout(seconds, BodyTooSlowError)


def stop_reading(environ: dict[str, Any]) -> None:
    """Shut the read side of gunicorn's client socket, so the connection closes right
    after the response instead of waiting for the rest of a body that trickles in."""
    sock = environ.get("gunicorn.socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.shutdown(socket.SHUT_RD)  # type: ignore[union-attr]


def content_security_policy(script_hashes: Sequence[str],
                            image_origins: Sequence[str]) -> dict[str, str | list[str]]:
    """A CSP that lets Dash run and nothing else: scripts only from this site (plus the
    hash of Dash's one inline renderer script), no framing, images from here, data: URLs
    (upload previews) and the thumbnail host."""
    return {
        "default-src": "'self'",
        # Plotly's WebGL scatter (regl) compiles its shaders' JS with `new Function`.
        "script-src": ["'self'", "'unsafe-eval'", *script_hashes],
        # Plotly and React set inline styles; styles cannot run code.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *image_origins],
        "font-src": ["'self'", "data:"],
        "connect-src": "'self'",
        "worker-src": ["'self'", "blob:"],
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def is_versioned(path: str, args: Any) -> bool:
    """Whether a URL names one version of a file: Dash's fingerprinted component suites
    (`.v4_4_1m123.js`, Dash's own `check_fingerprint`) and assets with their `?m=`."""
    if path.startswith("/assets/"):
        return "m" in args
    return path.startswith("/_dash-component-suites/") and check_fingerprint(path)[1]


def harden(
    server: Flask, script_hashes: Sequence[str], image_origins: Sequence[str],
    max_request_bytes: int = STATIC_MAX_REQUEST_BYTES, hosts: Sequence[str] = (),
) -> None:
    """Security headers (flask-talisman), request size limit, brotli/gzip compression
    (flask-compress), long cache lifetimes for versioned files, 400 for broken callbacks,
    404 for unknown component files, the Host header pinned to `hosts` when given.

    flask-talisman is the maintained Flask extension for these headers (CSP with hashes,
    frame-ancestors, Referrer-Policy, nosniff, HSTS when HTTPS is forced); HTTPS is forced
    only with $LOOKALIKE_FORCE_HTTPS=1, since the development server speaks plain HTTP.
    Its redirect is absolute, so it needs `hosts` ($LOOKALIKE_HOSTS): HostConfigError
    without them.
    """
    server.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    force_https = os.environ.get(FORCE_HTTPS_ENV, "").lower() in ("1", "true", "yes", "on")
    if force_https and not hosts:
        raise HostConfigError(f"{FORCE_HTTPS_ENV}=1 needs {HOSTS_ENV} (the site's host names, "
                              "comma-separated) to redirect to")
    if force_https:  # behind Heroku's router: trust its X-Forwarded-Proto (never -Host)
        server.wsgi_app = ProxyFix(server.wsgi_app, x_proto=1)  # type: ignore[method-assign]
    if hosts:
        server.wsgi_app = PinnedHost(server.wsgi_app, hosts)  # type: ignore[method-assign]
    Talisman(
        server,
        force_https=force_https,
        strict_transport_security=force_https,
        content_security_policy=content_security_policy(script_hashes, image_origins),
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=force_https,
        permissions_policy={"geolocation": "()", "microphone": "()", "camera": "()"},
    )
    server.config.update(
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_ALGORITHM_STREAMING=["br", "deflate"],
        COMPRESS_BR_LEVEL=5,
        COMPRESS_MIMETYPES=["text/html", "text/css", "application/javascript",
                            "text/javascript", "application/json", "image/svg+xml"],
    )
    Compress(server)
    precompressed: dict[tuple[str, str], bytes] = {}

    @server.before_request
    def _read_body_in_time() -> None:
        """The whole body, read before any view runs and within its deadline: a client
        sending a byte now and then holds a greenlet for seconds, never a worker."""
        length = request.content_length
        if length == 0 or (length is None and "chunked" not in
                           request.headers.get("Transfer-Encoding", "").lower()):
            return
        if length is not None and length > max_request_bytes:
            return  # refused unread with 413 by Flask's MAX_CONTENT_LENGTH
        try:
            with deadline(body_seconds(length or max_request_bytes)):
                request.get_data(cache=True)  # over the limit (chunked): 413
        except BodyTooSlowError:
            log.info("request body too slow on %s", request.path)
            stop_reading(request.environ)
            raise RequestTimeout() from None

    # Registered after Compress, so it runs first (Flask runs these in reverse order):
    # versioned files never change, so each is compressed once, at the highest level.
    @server.after_request
    def _cache_versioned(response: Response) -> Response:
        if not is_versioned(request.path, request.args) or response.status_code != 200:
            return response
        response.cache_control.no_cache = None  # send_file's default for assets
        response.cache_control.public = True
        response.cache_control.max_age = VERSIONED_MAX_AGE
        response.cache_control.immutable = True
        accepted = request.headers.get("Accept-Encoding", "").lower()
        encoding = next((e for e in ("br", "gzip") if e in accepted), None)
        if encoding is None or response.mimetype not in COMPRESSED_ONCE:
            return response
        key = (request.path, encoding)
        body = precompressed.get(key)
        if body is None:
            response.direct_passthrough = False
            data = response.get_data()
            # brotli 11 runs at ~0.3 MB/s: Plotly's 4.8 MB would hold a request for 15 s
            quality = 11 if len(data) <= BROTLI_11_MAX_BYTES else 9
            body = (brotli.compress(data, quality=quality) if encoding == "br"
                    else gzip.compress(data, compresslevel=9, mtime=0))
            if len(precompressed) < MAX_PRECOMPRESSED:  # a finite set of files anyway
                precompressed[key] = body
        response.direct_passthrough = False
        response.set_data(body)
        response.headers["Content-Encoding"] = encoding
        response.vary.add("Accept-Encoding")
        return response

    @server.errorhandler(Exception)
    def _error(error: Exception) -> Response | HTTPException:
        if isinstance(error, HTTPException):
            return error
        if isinstance(error, DependencyException) and request.path.startswith(
                COMPONENT_SUITES):  # a file Dash does not ship: the client's mistake
            return NotFound()
        if request.path == CALLBACK_PATH and isinstance(
            error, KeyError | TypeError | ValueError | IndexError | AttributeError | RecursionError
        ):  # a request Dash cannot parse: the client's fault, not ours
            log.info("malformed callback request: %s: %s", type(error).__name__, error)
            response = jsonify(error="malformed callback request")
            response.status_code = BadRequest.code
            return response
        log.exception("unhandled error on %s", request.path)
        response = jsonify(error="internal error")
        response.status_code = 500
        return response


def serve_thumbnails(server: Flask, shop: Shop) -> None:
    """`/thumbs/<id>.jpg`: only catalog ids resolve, with caching headers and ETags."""

    @server.route("/thumbs/<product_id>.jpg")
    def thumb(product_id: str) -> Response:
        relative = shop.thumb_file(product_id)
        if relative is None:
            abort(404)
        response = send_from_directory(shop.folder.resolve(), relative, max_age=THUMB_MAX_AGE,
                                       mimetype="image/jpeg")
        response.cache_control.public = True
        return response
