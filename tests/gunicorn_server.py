"""The production server for tests: gunicorn with the Procfile's config on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"


@contextlib.contextmanager
def gunicorn(folder: Path, *options: str, timeout: float = 60,
             env: Mapping[str, str] | None = None) -> Iterator[int]:
    """`gunicorn -c python:shopfront.gunicorn_conf app:server` serving `folder` on an
    ephemeral port of 127.0.0.1 (yielded once the master reports it); stopped on exit.
    `env` adds environment variables ($LOOKALIKE_HOSTS, ...)."""
    env = {**os.environ, **(env or {}), "LOOKALIKE_PRECOMPUTED": str(folder)}
    proc = subprocess.Popen(
        [str(GUNICORN), "-c", "python:shopfront.gunicorn_conf", "app:server",
         "--bind", "127.0.0.1:0", "--no-control-socket", *options],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = None
        deadline = time.monotonic() + timeout
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
            assert line or proc.poll() is None, "gunicorn exited"
        assert port, "gunicorn did not report its port"
        # keep reading its log, or a full pipe would block the server
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # type: ignore[union-attr]
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
