"""`--index faiss` at a million products: build time, memory and recall@10 against exact.

Synthetic 1,024-d vectors in 10,000 clusters (CNN features of a shop are clustered; pure
noise has no neighbours to find), unit length. Prints, measured in this run:
- the IVF-Flat index as `pipeline.ann` builds it: train + add time, resident memory added;
- per nprobe: recall@10 against the exact top-10 of 1,000 sampled queries (self
  excluded), queries/s, and the time all N products' queries would take (the build);
- the exact top-k's cost for the same 1,000 queries, extrapolated to all N (O(N²)), and
  the ratio: where the approximate index starts to pay.
With `--hnsw`, faiss's IndexHNSWFlat (M=32) is built and measured the same way.
Usage: python bench/bench_ann.py [--n 1000000] [--dim 1024] [--hnsw]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from bench_first_paint import cpu_line

from pipeline.ann import TRAIN_PER_LIST, ivf_lists

QUERIES = 1000
K = 10


def rss_mib() -> float:
    """Resident memory of this process (MiB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clustered(n: int, dim: int, clusters: int = 10_000, seed: int = 0) -> np.ndarray:
    """n unit vectors around `clusters` random centres, made in chunks (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        chunk = centres[rng.integers(0, clusters, m)]
        chunk += rng.standard_normal((m, dim), dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        x[start : start + m] = chunk
    return x


def exact_top_k(x: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact top-K of the query rows against all (self excluded); (indices, seconds)."""
    t = time.perf_counter()
    s = x[queries] @ x.T
    s[np.arange(len(queries)), queries] = -np.inf
    part = np.argpartition(-s, K, axis=1)[:, :K]
    return part, time.perf_counter() - t


def recall(found: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-K among the first K found (self dropped)."""
    hits = 0
    for q, row, want in zip(queries, found, truth, strict=True):
        got = [j for j in row if j != q and j >= 0][:K]
        hits += len(set(got) & set(want.tolist()))
    return hits / (K * len(queries))


def measure(name: str, index, x: np.ndarray, queries: np.ndarray, truth: np.ndarray,
            t_exact: float, probes: list[tuple[str, int]]) -> None:
    """Print recall, speed and the whole-catalog estimate for each search setting."""
    n = len(x)
    for label, value in probes:
        if name == "ivf":
            index.nprobe = value
        else:
            index.hnsw.efSearch = value
        t = time.perf_counter()
        _, found = index.search(x[queries], K + 1)
        seconds = time.perf_counter() - t
        all_n = seconds * n / len(queries)
        print(f"  {label}={value:<4d} recall@10 {recall(found, queries, truth):.4f}, "
              f"{len(queries) / seconds:8.0f} queries/s, all {n:,} products {all_n:8.0f} s "
              f"({t_exact * n / len(queries) / all_n:.0f}x faster than exact)")


def main() -> None:
    """Build, search and print."""
    import faiss

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--hnsw", action="store_true")
    args = ap.parse_args()
    print(cpu_line())
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (the machine may be shared)")
    t = time.perf_counter()
    x = clustered(args.n, args.dim)
    print(f"{args.n:,} x {args.dim} clustered unit vectors: {x.nbytes / 2**30:.2f} GiB, "
          f"made in {time.perf_counter() - t:.0f} s")
    queries = np.sort(np.random.default_rng(1).choice(args.n, QUERIES, replace=False))
    truth, t_exact = exact_top_k(x, queries)
    print(f"exact top-10 of {QUERIES} queries: {t_exact:.1f} s -> all {args.n:,} products "
          f"about {t_exact * args.n / QUERIES / 3600:.1f} h (O(N²))")

    before = rss_mib()
    t = time.perf_counter()
    nlist = ivf_lists(args.n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(args.dim), args.dim, nlist,
                               faiss.METRIC_INNER_PRODUCT)
    sample = np.sort(np.random.default_rng(0).choice(args.n, min(args.n, nlist * TRAIN_PER_LIST),
                                                      replace=False))
    index.train(x[sample])
    t_train = time.perf_counter() - t
    index.add(x)
    print(f"IVF-Flat, {nlist:,} lists: train {t_train:.0f} s, add "
          f"{time.perf_counter() - t - t_train:.0f} s, memory +{rss_mib() - before:,.0f} MiB")
    measure("ivf", index, x, queries, truth, t_exact,
            [("nprobe", p) for p in (8, 16, 32, 64, 128)])
    del index
    if args.hnsw:
        before = rss_mib()
        t = time.perf_counter()
        index = faiss.IndexHNSWFlat(args.dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.add(x)
        print(f"HNSW-Flat M=32: build {time.perf_counter() - t:.0f} s, memory "
              f"+{rss_mib() - before:,.0f} MiB")
        measure("hnsw", index, x, queries, truth, t_exact,
                [("efSearch", e) for e in (32, 64, 128, 256)])


if __name__ == "__main__":
    main()
