"""gunicorn settings for the shop front (`gunicorn -c python:shopfront.gunicorn_conf app:server`).

Command-line options still override these; $PORT and $WEB_CONCURRENCY are Heroku's.

Workers are gevent workers: each connection is a greenlet, so a client that sends its
request a byte at a time ties up a few KB of memory, not a worker (a sync worker reads a
request to the end before it serves anyone else: ten slow sockets took the site down).
Slow clients are bounded in time: the request line and headers must arrive within
`keepalive` seconds of connecting or of the previous response (gunicorn's gevent worker
times the whole header read, so a trickle does not keep it open), and the body within
the deadline `shopfront.web.body_seconds` sets; at most `worker_connections` per worker.
"""

from __future__ import annotations

import os

from gunicorn.http import wsgi

# gunicorn has no setting for its `Server:` header; naming the server and its version
# only helps an attacker pick exploits.
wsgi.SERVER = "lookalike"

bind = f"0.0.0.0:{os.environ['PORT']}" if "PORT" in os.environ else "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"  # needs the gevent package (a dependency)
worker_connections = 1000  # per worker; more wait in the listen backlog
keepalive = 5  # seconds: idle keep-alive, and the deadline for a request's headers
preload_app = True  # the shop is opened once in the master; workers share its pages
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
limit_request_line = 8190  # a URL longer than this is refused (414) before the app sees it
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
errorlog = "-"
