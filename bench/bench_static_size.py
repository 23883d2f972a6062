"""Installed size of the static site's requirements (the Heroku slug's dependencies).

    .venv/bin/python bench/bench_static_size.py [--keep]

Creates a temporary virtual environment, pip-installs requirements.txt into it, prints the
size of what was installed (site-packages, minus pip itself, which Heroku's Python already
has) in MiB against the 200 MiB budget, then proves the app runs with only those packages:
it imports the shop front with that interpreter and renders every page of a generated catalog.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_precomputed import make_fake_precomputed  # noqa: E402

BUDGET_MIB = 200
MiB = 1024 * 1024

SMOKE = r"""
import json, sys
from shopfront import create_app
from tests.dash_http import render_payload

front = create_app(sys.argv[1])
client = front.server.test_client()
for path in ["/", "/product/p001", "/product/nope", "/explore", "/about"]:
    assert client.get(path).status_code in (200, 404), path
    assert client.post("/_dash-update-component", json=render_payload(path)).status_code == 200
heavy = [m for m in ("tensorflow", "numpy", "pandas", "PIL") if m in sys.modules]
print("pages ok; heavy modules imported:", heavy or "none")
"""


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the venv and print its path")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-static-size-"))
    try:
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        t0 = time.perf_counter()
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-r", str(ROOT / "requirements.txt")],
            check=True,
        )
        took = time.perf_counter() - t0
        site = next((venv / "lib").glob("python3*/site-packages"))
        pip_size = sum(tree_size(p) for p in site.glob("pip*"))
        total = tree_size(site)
        installed = (total - pip_size) / MiB
        freeze = subprocess.run([str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                                capture_output=True, text=True, check=True).stdout.split()
        print(f"pip install -r requirements.txt: {len(freeze)} packages in {took:.0f} s")
        print("  " + " ".join(freeze))
        biggest = sorted(
            ((tree_size(p) / MiB, p.name) for p in site.iterdir() if p.is_dir()), reverse=True
        )[:6]
        print("  largest: " + ", ".join(f"{name} {size:.1f}" for size, name in biggest))
        folder = make_fake_precomputed(tmp / "pre", 50, k=5)
        smoke = subprocess.run([str(python), "-c", SMOKE, str(folder)], cwd=ROOT,
                               capture_output=True, text=True)
        if smoke.returncode != 0:
            print(smoke.stderr[-3000:])
            raise SystemExit("the app does not run with requirements.txt alone")
        print(f"  {smoke.stdout.strip()}")
        verdict = "within" if installed <= BUDGET_MIB else "OVER"
        print(f"installed size of the static requirements: {installed:.1f} MiB "
              f"(site-packages without pip; budget {BUDGET_MIB} MiB: {verdict})")
        if args.keep:
            print(f"kept: {venv}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
