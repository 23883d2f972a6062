"""Top-k neighbours: the build's path vs the matmul bound and the naive ways, same run.

Measured on the same random ReLU-like features, each with time and peak memory
(tracemalloc, numpy allocations):
- one full float32 matmul of the same size (X @ X.T, computed in row blocks of 1024 and
  dropped: the 2·N²·d FLOP an exact top-k cannot do without, at this CPU's BLAS rate);
- `rows_top_k` (the build): block pairs multiplied once and scanned both ways, then
  exact re-scoring; the ratio to the full matmul is the figure of issue 12 (<= 1.3x);
- the row-block path (`rows_top_k_block` per block: one block of rows against all);
- with `--dask WORKERS`, the Dask engine's `rows_on_dask` on a LocalCluster;
- for N <= 10,000, the original notebook: the N x N DataFrame and a sort per row.
All must give the same top-k. Usage: python bench/bench_topk.py [--n 8000] [--dim 1024]
[--k 10] [--dask 2]; issue 12's size: --n 44000 --dim 4096.

`--rows` times instead what a default build ranks (issue 17): both rows ("Looks like
this" and "other colours") over whitened shape (--dim, e.g. 256), the 720-d colour
descriptor and, in turn, departments and the word signals (text, colour words), as ratios to
the purely visual rows in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from bench_first_paint import cpu_line

from pipeline.rows import SIMILAR, RowInputs, RowRule, rows_top_k, rows_top_k_block
from pipeline.similarity import l2_normalise


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


def full_matmul(x: np.ndarray, block: int = 1024) -> float:
    """X @ X.T in row blocks (results dropped); returns a checksum so nothing is skipped."""
    total = 0.0
    for start in range(0, len(x), block):
        total += float((x[start : start + block] @ x.T)[0, 0])
    return total


def row_block_path(inputs: RowInputs, rule: RowRule, k: int, block: int = 1024) -> np.ndarray:
    """The per-row-block path (each block of rows against all), run locally."""
    n = len(inputs.shape)
    idx = np.full((n, k), -1, dtype=np.int64)
    for start in range(0, n, block):
        (found,) = rows_top_k_block([rule], inputs.shape, None, None, start,
                                    min(start + block, n), k, "cosine")
        idx[start : start + block] = found[0]
    return idx


def dask_top_k(inputs: RowInputs, rule: RowRule, k: int, workers: int) -> tuple[
    np.ndarray, float
]:
    """`rows_on_dask` (tiles of block pairs) on a fresh LocalCluster: (indices, seconds)."""
    from pipeline.dask_engine import dask_client, rows_on_dask, wait_closed

    with dask_client(workers=workers) as client:
        client.wait_for_workers(workers)
        t = time.perf_counter()
        ((idx, _),) = rows_on_dask(client, [rule], inputs, k, "cosine", 0.0, 1024)
        seconds = time.perf_counter() - t
    wait_closed()
    return idx, seconds


def rows_bench(n: int, dim: int, k: int, rounds: int = 3) -> None:
    """The default build's rows with and without departments and words, same data."""
    from pipeline.colour import COLOUR_DIM
    from pipeline.rows import COLOUR_WORDS, TEXT, plan_rows
    from pipeline.text import MAX_COLOUR_WORDS, TEXT_DIMS

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, dim))
    shape = l2_normalise((centres[rng.integers(0, 50, n)] + rng.normal(size=(n, dim)))
                         .astype(np.float32))
    # colour histograms as photos give them: a quarter of the bins, 30 palettes, so random
    # pairs spread as fashion-small-2k's do (sd about 0.2)
    palettes = np.abs(rng.normal(size=(30, COLOUR_DIM))) * (rng.random((30, COLOUR_DIM)) < 0.25)
    hist = palettes[rng.integers(0, 30, n)] * rng.random((n, COLOUR_DIM))
    colour = l2_normalise(np.sqrt(hist).astype(np.float32))
    colour = l2_normalise(colour - colour.mean(axis=0))
    text = {TEXT: l2_normalise(rng.normal(size=(n, TEXT_DIMS)).astype(np.float32)),
            COLOUR_WORDS: l2_normalise(np.eye(MAX_COLOUR_WORDS, dtype=np.float32)[
                rng.integers(0, MAX_COLOUR_WORDS, n)])}
    depts = rng.choice(["men", "women", "unisex", "kids"], size=n).tolist()
    keys = ("similar", "other_colours")
    print(f"N={n:,} shape d={dim} colour d={COLOUR_DIM} text d={TEXT_DIMS} colour words "
          f"d={MAX_COLOUR_WORDS} k={k}; load "
          f"average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (shared machine?)")
    runs = {
        "visual rows (text weight 0, no departments)": (plan_rows(keys, shape, colour), None,
                                                         None),
        "+ departments": (plan_rows(keys, shape, colour), None, depts),
        "+ departments + words (the default)": (plan_rows(keys, shape, colour, text=text),
                                                text, depts),
    }
    prepared = {name: (rules, RowInputs.prepare(shape, colour, "cosine", None, None, None,
                                                 words, departments))
                for name, (rules, words, departments) in runs.items()}
    rows_top_k(*prepared[next(iter(prepared))], k, "cosine", 0.0)  # warm up BLAS, threads
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):  # interleaved, so a noisy neighbour hits every configuration
        for name, (rules, inputs) in prepared.items():
            t = time.perf_counter()
            rows_top_k(rules, inputs, k, "cosine", 0.0)
            times[name].append(time.perf_counter() - t)
    medians = {name: float(np.median(v)) for name, v in times.items()}
    base = medians[next(iter(medians))]
    previous = base
    for name, seconds in medians.items():
        print(f"{name:45s} median {seconds:7.2f} s of {rounds} = {seconds / base:.3f}x the "
              f"visual rows, {seconds / previous:.3f}x the line above "
              f"(min {min(times[name]):.2f}, max {max(times[name]):.2f})")
        previous = seconds


def main() -> None:
    """Run them all and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dask", type=int, default=0, metavar="WORKERS",
                    help="also run the Dask engine's top-k on a LocalCluster of WORKERS "
                         "1-thread workers (127.0.0.1)")
    ap.add_argument("--rows", action="store_true",
                    help="time the build's two rows: visual, + departments, + words")
    args = ap.parse_args()
    print(cpu_line())
    if args.rows:
        rows_bench(args.n, args.dim, args.k)
        return
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(args.n, args.dim))).astype(np.float32)  # ReLU-like features
    ids = [f"p{i:06d}" for i in range(args.n)]
    inputs = RowInputs.prepare(x, None, "cosine")
    rule = RowRule(SIMILAR, "Looks like this", 1.0, 0.0)
    features_mib = inputs.shape.nbytes / 2**20
    print(f"N={args.n:,} d={args.dim} k={args.k}; features {features_mib:,.0f} MiB; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (shared machine?)")
    _, t_mm, m_mm = measure(lambda: full_matmul(inputs.shape))
    gflops = 2 * args.n**2 * args.dim / t_mm / 1e9
    print(f"full float32 matmul (2N²d, blocks of 1024): {t_mm:7.2f} s ({gflops:.0f} GFLOP/s), "
          f"peak {m_mm:,.0f} MiB")
    ((idx, _),), t_sym, m_sym = measure(lambda: rows_top_k([rule], inputs, args.k, "cosine",
                                                           0.0, block=1024))
    print(f"rows_top_k (block pairs, exact re-scoring): {t_sym:7.2f} s = "
          f"{t_sym / t_mm:.2f}x the full matmul, peak {m_sym:,.0f} MiB beyond the features")
    blocks, t_blk, m_blk = measure(lambda: row_block_path(inputs, rule, args.k))
    print(f"row blocks (each against all):             {t_blk:7.2f} s = "
          f"{t_blk / t_mm:.2f}x the full matmul, peak {m_blk:,.0f} MiB; "
          f"same top-k: {np.array_equal(idx, blocks)}")
    if args.dask:
        on_dask, t_dask = dask_top_k(inputs, rule, args.k, args.dask)
        print(f"Dask, LocalCluster of {args.dask} x 1 thread:   {t_dask:7.2f} s = "
              f"{t_dask / t_sym:.2f}x rows_top_k (scatter and merge included, cluster start "
              f"not); same bytes: {np.array_equal(idx, on_dask)}")
    if args.n <= 10_000:
        naive, t_naive, m_naive = measure(lambda: naive_top_k(x, ids, args.k))
        differ = [i for i in range(args.n) if [ids[j] for j in idx[i]] != naive[i]]
        print(f"naive DataFrame + per-row sort:            {t_naive:7.2f} s, peak "
              f"{m_naive:,.0f} MiB; {t_naive / t_sym:.1f}x slower than rows_top_k; "
              f"identical top-k for {args.n - len(differ):,}/{args.n:,} products")
        if differ:  # near-ties the naive float32 sort orders by rounding error
            x64 = inputs.shape.astype(np.float64)
            exact = 0
            for i in differ:
                s = (x64 @ x64[i]).astype(np.float32)  # published scores are float32
                s[i] = -np.inf
                exact += list(np.lexsort((np.arange(args.n), -s))[: args.k]) == list(idx[i])
            print(f"  of the {len(differ)} that differ, rows_top_k equals a float64 sort "
                  f"(float32 ties to the lower index) for {exact}")


if __name__ == "__main__":
    main()
