"""The Dask engine's overhead on fashion-small-2k, against the local engine in the same run.

Builds the 2,000-photo catalog with the shared MobileNet three times, each with a fresh
feature cache so every run embeds every photo:
- the local engine;
- `--engine dask --workers 2` (a LocalCluster of 2 worker processes on 127.0.0.1);
- `--engine dask --scheduler ...` against `dask scheduler` + `dask worker --nworkers 2
  --nthreads 1` processes started as README's Dask section says (on 127.0.0.1, free ports).
The three builds run `--repeat` times, interleaved (this machine is shared and noisy).
Prints each build's median and best time (the build's own summary, and the whole command
with Python start-up), their ratios to the local engine, and whether products.json,
neighbours*.json, embeddings.npy and colours.npy are byte-identical to the local ones.
Usage: python bench/bench_dask.py [--out bench/out/dask] [--batch 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_first_paint import cpu_line, free_port  # noqa: E402

SHARED = REPO.parent / "shared"
FASHION = SHARED / "data" / "fashion-small-2k"
MODEL = SHARED / "models" / "mobilenet-v1-imagenet-dw13-gap.keras"
DASK = Path(sys.executable).with_name("dask")
SUMMARY = re.compile(r"(\d+) products, (\d+) embedded now, (\d+) from cache, .* ([0-9.]+) s -> ")


def build(out: Path, batch: int, *extra: str) -> tuple[float, float, str]:
    """Run one build with a fresh cache; (build seconds from its summary, command seconds,
    summary line)."""
    cache = out.with_name(out.name + "-cache")
    for path in (out, cache):
        shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "build", str(FASHION / "images"),
         "--metadata", str(FASHION / "styles.csv"), "--title-column", "productDisplayName",
         "--model", str(MODEL), "--out", str(out), "--cache-dir", str(cache),
         "--batch", str(batch), "--no-progress", *extra],
        check=True, cwd=REPO, capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    line = done.stdout.strip().splitlines()[-1]
    m = SUMMARY.search(line)
    if not m or m[3] != "0":
        raise SystemExit(f"unexpected summary (every photo must be embedded now): {line}")
    return float(m[4]), wall, line


def same_bytes(a: Path, b: Path) -> tuple[bool, list[str]]:
    """Whether the outputs that must match do, and which differ."""
    names = ["products.json", "embeddings.npy", "colours.npy"]
    names += sorted(p.name for p in a.glob("neighbours*.json"))
    differ = [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
    return not differ, differ


def scheduler_and_workers(workers: int) -> tuple[str, list[subprocess.Popen]]:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, as the README starts them;
    returns the address once every worker has joined."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = dict(cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], **quiet)]
    procs.append(subprocess.Popen([str(DASK), "worker", address, "--nworkers", str(workers),
                                   "--nthreads", "1", "--host", "127.0.0.1",
                                   "--no-dashboard"], **quiet))
    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "dask")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of the three builds, interleaved (default 3)")
    args = ap.parse_args()
    if not (MODEL.is_file() and (FASHION / "styles.csv").is_file()):
        raise SystemExit(f"needs ../shared (model and fashion-small-2k) at {SHARED}")
    args.out.mkdir(parents=True, exist_ok=True)
    print(cpu_line())
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(the machine may be shared: other work inflates every figure alike)")
    names = {"local": "local", "dask LocalCluster (2 workers)": "localcluster",
             "dask scheduler + 2 worker processes": "processes"}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(args.repeat):
        # interleaved, so a slow spell of a shared machine hits every engine alike
        seconds, wall, _ = build(args.out / "local", args.batch)
        runs["local"].append((seconds, wall))
        seconds, wall, _ = build(args.out / "localcluster", args.batch,
                                 "--engine", "dask", "--workers", "2")
        runs["dask LocalCluster (2 workers)"].append((seconds, wall))
        # fresh processes each round: a standing cluster's later builds would find the
        # model loaded already, which is faster than the first build measured here
        address, procs = scheduler_and_workers(2)
        try:
            seconds, wall, _ = build(args.out / "processes", args.batch,
                                     "--engine", "dask", "--scheduler", address)
            runs["dask scheduler + 2 worker processes"].append((seconds, wall))
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
        print(f"round {round_ + 1}: " + ", ".join(
            f"{folder} {runs[name][-1][0]:.1f} s" for name, folder in names.items()),
            flush=True)
    base = [s for s, _ in runs["local"]]
    base_wall = [w for _, w in runs["local"]]
    print(f"fashion-small-2k, MobileNet (shared), batch {args.batch}, fresh cache per run, "
          f"{args.repeat} interleaved rounds; build = the build's own summary, command = "
          "with Python start-up; ratios to the local engine:")
    for name, folder in names.items():
        same, differ = same_bytes(args.out / "local", args.out / folder)
        secs, walls = [s for s, _ in runs[name]], [w for _, w in runs[name]]
        print(f"  {name:38s} build median {median(secs):6.1f} s "
              f"({median(secs) / median(base):.2f}x), min {min(secs):6.1f} s "
              f"({min(secs) / min(base):.2f}x); command median {median(walls):6.1f} s "
              f"({median(walls) / median(base_wall):.2f}x); outputs "
              + ("byte-identical" if same else f"DIFFER: {', '.join(differ)}"))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
