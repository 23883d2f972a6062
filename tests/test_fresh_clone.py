"""A fresh clone serves dynamic mode: the demo's model ships inside the repository.

The files git tracks (their working-tree versions; a new file counts once it is
`git add`ed) are copied to a temporary folder with no `../shared` beside it, and
`python app.py --dynamic` is started there with this project's interpreter and a
PYTHONPATH pointing at the copy, so the copy's code runs. The editable install's import
finder is taken out first: it would otherwise supply any package the copy lacks from
this working tree.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="dynamic mode needs TensorFlow: pip install -e \".[dynamic]\"",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="git not installed"),
]


def tracked_files(repo: Path) -> list[str]:
    """Paths git tracks in `repo` that exist in its working tree."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, check=True, capture_output=True
    ).stdout.decode()
    return [p for p in out.split("\0") if p and (repo / p).is_file()]


def copy_tracked(repo: Path, dest: Path) -> Path:
    """Copy the tracked files of `repo` (working-tree contents) into `dest`."""
    for rel in tracked_files(repo):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)
    return dest


# Runs a script as `python SCRIPT ARGS...` would, without the editable install's finder.
WITHOUT_EDITABLE_FINDER = """\
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(clone: Path) -> dict[str, str]:
    """This environment without the app's LOOKALIKE_* settings, importing from `clone`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["PYTHONPATH"] = str(clone)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def test_fresh_clone_serves_dynamic_mode(tmp_path: Path) -> None:
    clone = copy_tracked(ROOT, tmp_path / "lookalike")
    assert not (clone.parent / "shared").exists()
    assert (clone / "precomputed" / "models" / "mobilenet-v1-imagenet-dw13-gap.keras").is_file()
    env = clean_env(clone)
    where = subprocess.run(
        [sys.executable, "-c", "import pipeline; print(pipeline.__file__)"],
        cwd=clone, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to(clone.resolve()), where

    port = free_port()
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", WITHOUT_EDITABLE_FINDER,
             "app.py", "--dynamic", "--port", str(port), "--host", "127.0.0.1"],
            cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        status = None
        while status is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"app exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                time.sleep(0.5)
        assert status == 200, f"no answer within {START_TIMEOUT_S} s:\n{log.read_text()}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
