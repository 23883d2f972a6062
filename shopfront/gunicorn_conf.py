"""gunicorn settings for the shop front (`gunicorn -c python:shopfront.gunicorn_conf app:server`).

Command-line options still override these; $PORT and $WEB_CONCURRENCY are Heroku's.
"""

from __future__ import annotations

import os

from gunicorn.http import wsgi

# gunicorn has no setting for its `Server:` header; naming the server and its version
# only helps an attacker pick exploits.
wsgi.SERVER = "lookalike"

bind = f"0.0.0.0:{os.environ['PORT']}" if "PORT" in os.environ else "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
preload_app = True  # the shop is opened once in the master; workers share its pages
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
limit_request_line = 8190  # a URL longer than this is refused (414) before the app sees it
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
errorlog = "-"
