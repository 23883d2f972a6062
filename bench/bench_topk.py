"""Top-k neighbours: row blocks vs the tutorial's full N x N DataFrame, same run, same data.

The naive way (the original notebook): `cosine_similarity` of everything into a pandas
DataFrame, then sort every row. Both give the same top-k; this prints time and peak
memory (tracemalloc, numpy allocations) of each and their ratios.
Usage: python bench/bench_topk.py [--n 8000] [--dim 1024] [--k 10]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from pipeline.similarity import l2_normalise, top_k_neighbours


def naive_top_k(x: np.ndarray, ids: list[str], k: int) -> list[list[str]]:
    """Full DataFrame, then per-row sort, skipping the query itself."""
    import pandas as pd

    xn = l2_normalise(x)
    frame = pd.DataFrame(xn @ xn.T, index=ids, columns=ids)
    out = []
    for pid in ids:
        row = frame.loc[pid].drop(pid).sort_values(ascending=False, kind="stable")
        out.append(list(row.index[:k]))
    return out


def measure(fn):
    """(result, seconds, peak MiB) of a call."""
    tracemalloc.start()
    t = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    """Run both and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(args.n, args.dim))).astype(np.float32)  # ReLU-like features
    ids = [f"p{i:06d}" for i in range(args.n)]

    (idx, _), t_block, m_block = measure(lambda: top_k_neighbours(x, args.k))
    naive, t_naive, m_naive = measure(lambda: naive_top_k(x, ids, args.k))
    same = sum(
        [ids[j] for j in idx[i]] == naive[i] for i in range(args.n)
    )
    print(f"N={args.n:,} d={args.dim} k={args.k}")
    print(f"naive DataFrame + per-row sort: {t_naive:7.2f} s, peak {m_naive:8.0f} MiB")
    print(f"row blocks of 1024:            {t_block:7.2f} s, peak {m_block:8.0f} MiB")
    print(
        f"speed-up {t_naive / t_block:.1f}x, memory {m_naive / m_block:.1f}x less; "
        f"identical top-k for {same:,}/{args.n:,} products"
    )


if __name__ == "__main__":
    main()
