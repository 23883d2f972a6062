"""The explore map: UMAP vs PCA on fashion-small-2k, same run, same features.

Features come from the real build with the shared MobileNet (`python -m pipeline build`,
features cached in bench/out/cache-fashion, so a re-run skips the model), or from an
existing precomputed folder (`--precomputed DIR`). Prints, all measured in this run:
- sklearn's trustworthiness (k=10, cosine in feature space) of each 2-D map: how many of a
  product's map neighbours are also its neighbours in feature space (1.0 = all);
- what a shopper sees: articleType accuracy of a 10-nearest-neighbour vote on the map
  (leave-one-out; ties go to the nearest label), with the same vote in feature
  space as the ceiling;
- wall time: PCA, UMAP's first call in this process (numba compiles), a warm call, and
  plain `umap.UMAP` (its own per-pair distance loop) for the exact-kNN shortcut;
- ratios UMAP / PCA, and whether two runs with the same seed give the same bytes.
The map is computed on what the build keeps in embeddings.npy: whitened 256-d features by
default (`--no-whiten`: the model's 1,024-d ones).
Usage: python bench/bench_projection.py [--precomputed DIR] [--seed 0] [--no-whiten]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from bench_first_paint import cpu_line, versions_line

from pipeline.projection import UMAP_MIN_PRODUCTS, pca_2d, project_2d
from pipeline.similarity import l2_normalise

REPO = Path(__file__).resolve().parents[1]
FASHION = REPO.parent / "shared" / "data" / "fashion-small-2k"
MODEL = REPO.parent / "shared" / "models" / "mobilenet-v1-imagenet-dw13-gap.keras"
CACHE = REPO / "bench" / "out" / "cache-fashion"
K = 10


def machine_header() -> None:
    """CPU model and flags, Python and the packages that do the work."""
    print(cpu_line())
    print(f"Python {platform.python_version()}; "
          + versions_line(("umap-learn", "numba", "pynndescent", "scikit-learn", "numpy")))


def build_features(out: Path, whiten: bool) -> Path:
    """Run the real build on fashion-small-2k into `out` (features cached between runs)."""
    cmd = [
        sys.executable, "-m", "pipeline", "build", str(FASHION / "images"),
        "--metadata", str(FASHION / "styles.csv"), "--title-column", "productDisplayName",
        "--model", str(MODEL), "--out", str(out), "--cache-dir", str(CACHE), "--no-progress",
        "--whiten" if whiten else "--no-whiten",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"build failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    print(f"build: {r.stdout.strip().splitlines()[-1]} ({time.perf_counter() - t:.0f} s)")
    return out


def load(precomputed: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features as float32, articleType per row) in products.json order."""
    products = json.loads((precomputed / "products.json").read_text(encoding="utf-8"))
    x = np.load(precomputed / "embeddings.npy").astype(np.float32)
    if len(x) != len(products):
        sys.exit(f"{precomputed}: {len(x)} embeddings for {len(products)} products")
    return x, np.array([p["attrs"].get("articleType", "") for p in products])


def vote_accuracy(neighbours: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose neighbours' majority label is their own (ties: nearest first)."""
    hits = sum(
        Counter(labels[row]).most_common(1)[0][0] == labels[i] for i, row in enumerate(neighbours)
    )
    return hits / len(labels)


def nearest_2d(xy: np.ndarray, k: int) -> np.ndarray:
    """k nearest other rows on the map (Euclidean), nearest first, ties to the lower index."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def nearest_features(x: np.ndarray, k: int) -> np.ndarray:
    """k nearest other rows by cosine in feature space (the ceiling for the map's vote)."""
    xn = l2_normalise(x)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def timed(fn):
    """(result, seconds) of a call."""
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def main() -> None:
    """Build (or read) the features, map them both ways, print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--precomputed", type=Path, help="reuse this folder instead of building")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--whiten", action=argparse.BooleanOptionalAction, default=True,
                    help="build with the pipeline's default whitening (the features the map "
                    "gets) or without (the model's raw features)")
    args = ap.parse_args()
    machine_header()
    with tempfile.TemporaryDirectory(prefix="bench-projection-") as tmp:
        folder = args.precomputed or build_features(Path(tmp) / "fashion", args.whiten)
        x, labels = load(folder)
    print(f"{len(x):,} products x {x.shape[1]} dims, {len(set(labels))} articleTypes; "
          f"UMAP from {UMAP_MIN_PRODUCTS} products")

    from sklearn.manifold import trustworthiness

    t = time.perf_counter()
    import umap

    t_import = time.perf_counter() - t
    xy_pca, t_pca = timed(lambda: pca_2d(x))
    (xy_umap, method), t_cold = timed(lambda: project_2d(x, args.seed))
    (xy_again, _), t_warm = timed(lambda: project_2d(x, args.seed))
    assert method == "umap", method
    plain = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine",
                      random_state=args.seed, n_jobs=1)
    xy_plain, t_plain = timed(lambda: plain.fit_transform(x))

    ceiling = vote_accuracy(nearest_features(x, K), labels)
    rows = {}
    for name, xy in (("PCA", xy_pca), ("UMAP", xy_umap), ("plain umap.UMAP", xy_plain)):
        trust = trustworthiness(x, xy, n_neighbors=K, metric="cosine")
        rows[name] = (trust, vote_accuracy(nearest_2d(xy, K), labels))

    print(f"import umap: {t_import:.1f} s (pulls in TensorFlow when installed)")
    print(f"{'map':<17} {'trustworthiness':>16} {'articleType vote':>17} {'time':>9}")
    times = {"PCA": t_pca, "UMAP": t_warm, "plain umap.UMAP": t_plain}
    for name, (trust, acc) in rows.items():
        print(f"{name:<17} {trust:16.4f} {acc:17.3f} {times[name]:8.2f}s")
    print(f"{f'features {x.shape[1]}-d':<17} {'':>16} {ceiling:17.3f}")
    (t_u, a_u), (t_p, a_p) = rows["UMAP"], rows["PCA"]
    print(f"UMAP first call in this process (numba compiles): {t_cold:.2f} s; warm: {t_warm:.2f} s")
    same = xy_umap.tobytes() == xy_again.tobytes()
    print(f"UMAP / PCA: trustworthiness {t_u / t_p:.3f}x, articleType vote {a_u / a_p:.2f}x, "
          f"time {t_warm / t_pca:.0f}x; exact kNN vs plain umap.UMAP: {t_plain / t_warm:.1f}x "
          f"faster; same seed, same bytes: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
