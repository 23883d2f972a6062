"""Heroku deployment files, and the production server command they run."""

from __future__ import annotations

import re
import shutil
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.gunicorn_server import gunicorn

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[<>=~!;\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_requirements_hold_only_static_serving_deps() -> None:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert not any(line.strip().startswith("-e") for line in lines)
    names = requirement_names(lines)
    assert sorted(names) == ["brotli", "dash", "dash-bootstrap-components", "flask-compress",
                             "flask-talisman", "gevent", "gunicorn", "orjson"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert sorted(requirement_names(pyproject["project"]["dependencies"])) == sorted(names)


def test_procfile_python_version_and_slugignore() -> None:
    procfile = (ROOT / "Procfile").read_text().strip().splitlines()
    assert procfile == ["web: gunicorn -c python:shopfront.gunicorn_conf app:server"]
    assert (ROOT / ".python-version").read_text().strip() == "3.11"
    ignored = [
        line.strip() for line in (ROOT / ".slugignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("app.py", "assets/", "pipeline/", "precomputed/", "shopfront/"):
        assert needed not in ignored
    for unneeded in ("tests/", "bench/", "docs/"):
        assert unneeded in ignored


@pytest.mark.skipif(shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None,
                    reason="gunicorn not installed")
def test_gunicorn_serves_the_folder_from_env(fake_folder: Path) -> None:
    with gunicorn(fake_folder, "--workers", "1", timeout=30) as port:
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):  # the worker boots just after the master reports the port
            try:
                with urllib.request.urlopen(f"{base}/product/p001", timeout=5) as r:
                    assert r.status == 200 and b"bootstrap.min.css" in r.read()
                    assert r.headers["Server"] == "lookalike"  # not gunicorn and its version
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("gunicorn never answered")
        with urllib.request.urlopen(f"{base}/thumbs/p001.jpg", timeout=5) as r:
            assert r.headers["Content-Type"] == "image/jpeg"
