"""Dynamic mode: upload-to-results latency and worker memory, against the naive way.

For the shared MobileNet file (if ../shared is there) and for VGG16 fc2 with random
weights, each in a fresh process (so peak RSS is that of one dynamic worker):
- a 10,000-product precomputed catalog of the model's dimension is generated;
- `PhotoSearcher` loads it and the model (the app's code path), then answers uploads of
  real-sized JPEGs; latency p50/p99 split into decode, embed and search;
- naive search: re-normalise the catalog per request and argsort all scores;
- naive model load: `keras.models.load_model` of the same model saved as `.keras`
  (VGG16 only), its peak RSS in its own process.
Targets: VGG16 worker peak RSS < 2 GiB; search over 10,000 products < 20 ms.
Usage: python bench/bench_dynamic.py [--products 10000] [--uploads 30]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_MODEL = ROOT.parent / "shared" / "models" / "mobilenet-v1-imagenet-dw13-gap.keras"


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_catalog(folder: Path, identity: dict, n: int) -> None:
    """A contract-2 folder with n products and random embeddings of the model's dim."""
    import numpy as np

    from pipeline.precomputed import SCHEMA_VERSION

    rng = np.random.default_rng(0)
    emb = np.abs(rng.normal(size=(n, identity["dim"]))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    folder.mkdir(parents=True)
    np.save(folder / "embeddings.npy", emb.astype(np.float16))
    products = [
        {
            "id": f"p{i:05d}",
            "title": f"Product {i}",
            "attrs": {"articleType": f"t{i % 40}"},
            "thumb": f"thumbs/p{i:05d}.jpg",
            "xy": [0, 0],
        }
        for i in range(n)
    ]
    (folder / "products.json").write_text(json.dumps(products))
    (folder / "neighbours.json").write_text("{}")
    meta = {
        "schema_version": SCHEMA_VERSION,
        "n_products": n,
        "k": 10,
        "metric": "cosine",
        "model": {**identity, "resize": "pad"},
    }
    (folder / "meta.json").write_text(json.dumps(meta))


def photo_bytes(i: int) -> bytes:
    """A 1200x1600 product-like JPEG (a phone photo of a product)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1200, 1600), "white")
    ImageDraw.Draw(img).ellipse((200 + i, 300, 1000, 1300 - i), fill=(30 + 7 * i % 200, 90, 160))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    """Percentile (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def identity_of(model: str) -> dict:
    """The model identity the catalog must carry (random weights for VGG16)."""
    from pipeline.models import load_extractor

    return load_extractor(model, "random" if model == "vgg16" else "imagenet").identity


def worker(model: str, folder: str, uploads: int) -> dict:
    """One dynamic worker, as the app runs it: load catalog + model, answer uploads."""
    import numpy as np

    from pipeline.precomputed import read_precomputed
    from pipeline.search import PhotoSearcher

    t = time.perf_counter()
    searcher = PhotoSearcher(read_precomputed(folder), model_path=model)
    searcher.preload()
    startup = time.perf_counter() - t
    photos = [photo_bytes(i) for i in range(uploads)]
    searcher.search(photos[0])  # warm-up
    timings: dict[str, list[float]] = {"decode": [], "embed": [], "search": [], "total": []}
    results = []
    for data in photos:
        t0 = time.perf_counter()
        r = searcher.search(data)
        timings["total"].append((time.perf_counter() - t0) * 1e3)
        for key in ("decode", "embed", "search"):
            timings[key].append(r.timings_ms[key])
        results.append(r)
    worker_peak = peak_rss_mib()  # before the naive way allocates its float64 copies
    naive = []
    for data, r in zip(photos, results, strict=True):
        vec, _, _ = searcher.embed_photo(data)
        t1 = time.perf_counter()
        raw = np.load(searcher.pre.embeddings_path).astype(np.float64)  # naive: per request
        raw /= np.linalg.norm(raw, axis=1, keepdims=True)
        order = np.argsort(-(raw @ vec))[:10]
        naive.append((time.perf_counter() - t1) * 1e3)
        assert searcher.ids[order[0]] == r.neighbours[0][0]
    return {
        "model": searcher.model_meta["name"],
        "dim": searcher.model_meta["dim"],
        "startup_s": startup,
        "p50": {k: pct(v, 50) for k, v in timings.items()},
        "p99": {k: pct(v, 99) for k, v in timings.items()},
        "naive_search_p50": pct(naive, 50),
        "peak_rss_mib": worker_peak,
    }


def naive_load(path: str) -> dict:
    """Peak RSS of `keras.models.load_model` of a saved .keras file, in a fresh process."""
    import keras

    keras.models.load_model(path, compile=False)
    return {"peak_rss_mib": peak_rss_mib()}


def save_vgg16(path: str) -> dict:
    """Save random-weight VGG16 fc2 as .keras (input for naive_load)."""
    from pipeline.models import load_extractor

    load_extractor("vgg16", "random").model.save(path)
    return {}


def run_child(*args: str) -> dict:
    """Run this script's `--child` mode in a fresh interpreter and parse its JSON."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the workers in child processes and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--uploads", type=int, default=30)
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {
            "worker": lambda: worker(rest[0], rest[1], args.uploads),
            "identity": lambda: identity_of(rest[0]),
            "naive_load": lambda: naive_load(rest[0]),
            "save": lambda: save_vgg16(rest[0]),
        }
        print(json.dumps(fn[kind]()))
        return
    models = ["vgg16"] + ([str(SHARED_MODEL)] if SHARED_MODEL.is_file() else [])
    for model in models:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "pre"
            make_catalog(folder, run_child("identity", model), args.products)
            r = run_child("worker", model, str(folder))
        p50, p99 = r["p50"], r["p99"]
        print(
            f"{r['model']} ({r['dim']}-d), {args.products:,} products, {args.uploads} uploads "
            f"of 1200x1600 JPEG:"
        )
        print(f"  total  p50 {p50['total']:7.1f} ms  p99 {p99['total']:7.1f} ms")
        for key in ("decode", "embed", "search"):
            print(f"  {key:<6} p50 {p50[key]:7.1f} ms  p99 {p99[key]:7.1f} ms")
        print(
            f"  naive search (reload + renormalise + full argsort) p50 "
            f"{r['naive_search_p50']:.1f} ms: {r['naive_search_p50'] / p50['search']:.0f}x slower"
        )
        print(f"  worker start-up {r['startup_s']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "vgg16.keras")
        run_child("save", path)
        naive = run_child("naive_load", path)
        print(
            f"naive load_model of VGG16 saved as .keras: peak RSS {naive['peak_rss_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
