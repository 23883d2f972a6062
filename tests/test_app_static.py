"""Static mode stays light: no TensorFlow, and it works without numpy/pandas/Pillow.

Each check runs in a fresh interpreter (subprocess) so modules imported by other tests
cannot hide or fake an import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Imports the app, builds it, and renders every page through the real callback endpoint.
SCRIPT = r"""
import json, sys

BLOCK = set(sys.argv[2].split(",")) if len(sys.argv) > 2 and sys.argv[2] else set()

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ImportError(f"{name} is not installed in the static install")
        return None

sys.meta_path.insert(0, Blocker())

from shopfront import create_app
from tests.dash_http import explore_payload, render_payload

front = create_app(sys.argv[1])
client = front.server.test_client()
assert client.get("/").status_code == 200
assert client.get("/thumbs/p001.jpg").status_code == 200

def post(payload):
    r = client.post("/_dash-update-component", json=payload)
    assert r.status_code == 200, r.data[:300]
    return json.dumps(r.get_json())

for path in ["/", "/product/p001", "/product/unknown", "/explore", "/about", "/nowhere"]:
    body = post(render_payload(path, "?q=red"))
    assert len(body) > 100, (path, body)
assert "scatter" in post(explore_payload("gender"))
heavy = sorted(m for m in ("tensorflow", "keras", "numpy", "pandas", "PIL")
               if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def run_static(folder: Path, block: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), block],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return next(line for line in result.stdout.splitlines() if line.startswith("HEAVY="))


def test_static_mode_never_imports_tensorflow(fake_folder: Path) -> None:
    heavy = run_static(fake_folder).removeprefix("HEAVY=").split(",")
    assert "tensorflow" not in heavy
    assert "keras" not in heavy


@pytest.mark.parametrize("blocked", ["tensorflow,keras,numpy,pandas,PIL"])
def test_static_mode_works_without_heavy_packages(fake_folder: Path, blocked: str) -> None:
    assert run_static(fake_folder, blocked) == "HEAVY="
