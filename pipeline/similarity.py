"""Exact top-k neighbours in row blocks, and the full pairwise DataFrame for small catalogs.

Peak memory of `top_k_neighbours` is O(N*d + block*N): one block of query rows is
compared with the whole catalog at a time, never the N x N matrix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Metric = Literal["cosine", "euclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean")
DEFAULT_BLOCK = 1024
RESCORE_EXTRA = 8  # candidates beyond k taken from a block for exact re-scoring
# Block scores come from a float32 matmul whose rounding depends on the BLAS kernel and its
# thread count (a Dask worker with 1 thread vs the client with 2 differ in the 7th digit).
# Every column within this much of a row's k-th best block score is re-scored exactly, so
# the result is the same on any engine while the matmul's error stays below half of it.
BLAS_TOLERANCE = 1e-4
PAIRWISE_MAX_BYTES = 2 * 1024**3  # default cap for the full DataFrame (float64 cells)


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _codes(keys: np.ndarray | list | None, n: int) -> np.ndarray | None:
    if keys is None:
        return None
    arr = np.asarray(keys, dtype=object)
    if len(arr) != n:
        raise ValueError(f"expected {n} keys, got {len(arr)}")
    _, codes = np.unique(arr.astype(str), return_inverse=True)
    return codes.astype(np.int64)


def block_scores(
    features: np.ndarray,
    sq_norms: np.ndarray | None,
    start: int,
    stop: int,
    metric: Metric,
    columns: slice = slice(None),
) -> np.ndarray:
    """Similarity of rows [start, stop) against all rows (or the rows of `columns`), as
    'higher is closer' float32.

    For `cosine`, `features` must already be L2-normalised and the value is the cosine
    similarity. For `euclidean` the value is minus the squared distance.
    """
    q = features[start:stop]
    s = q @ features[columns].T
    if metric == "euclidean":
        assert sq_norms is not None
        s = 2 * s - sq_norms[start:stop, None] - sq_norms[None, columns]
    return s


def _exclude(
    s: np.ndarray, start: int, group_codes: np.ndarray | None, dup_codes: np.ndarray | None
) -> None:
    """Set self, same-image and (with groups) other-group columns of a block to -inf."""
    b = len(s)
    rows = np.arange(b)
    s[rows, start + rows] = -np.inf
    if dup_codes is not None:
        s[dup_codes[start : start + b, None] == dup_codes[None, :]] = -np.inf
    if group_codes is not None:
        s[group_codes[start : start + b, None] != group_codes[None, :]] = -np.inf


def candidate_columns(
    scores: np.ndarray,
    start: int,
    k: int,
    tolerance: float,
    group_codes: np.ndarray | None = None,
    dup_codes: np.ndarray | None = None,
) -> np.ndarray:
    """Columns of each block row whose score is within `tolerance` of the row's k-th best,
    as a (rows, width) index array padded with -1. Self, products with a byte-identical
    image (same dup code) and, with groups, products of another group are excluded.

    When the block's scores are within tolerance/2 of exact ones, the exact top-k of every
    row is among its candidates, whatever rounding produced the block.
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    b, n = s.shape
    _exclude(s, start, group_codes, dup_codes)
    kk = min(k, n - 1) if n > 1 else 0
    if kk <= 0:
        return np.full((b, 0), -1, dtype=np.int64)
    m = min(kk + RESCORE_EXTRA, n)
    part = np.argpartition(-s, m - 1, axis=1)[:, :m]
    vals = np.take_along_axis(s, part, axis=1)
    kth = -np.partition(-vals, kk - 1, axis=1)[:, kk - 1]
    threshold = np.where(np.isfinite(kth), kth - np.float32(tolerance), -np.float32(np.inf))
    keep = (vals >= threshold[:, None]) & np.isfinite(vals)
    within = ((s >= threshold[:, None]) & np.isfinite(s)).sum(axis=1)
    rows: list[np.ndarray] = [part[r, keep[r]] for r in range(b)]
    for r in np.flatnonzero(within > keep.sum(axis=1)):  # more near-ties than were taken
        rows[r] = np.flatnonzero((s[r] >= threshold[r]) & np.isfinite(s[r]))
    return padded(rows)


def padded(rows: list[np.ndarray]) -> np.ndarray:
    """Index arrays of different lengths as one (len(rows), longest) array padded with -1."""
    out = np.full((len(rows), max(map(len, rows), default=0)), -1, dtype=np.int64)
    for r, cols in enumerate(rows):
        out[r, : len(cols)] = cols
    return out


def pair_scores(
    features: np.ndarray, start: int, columns: np.ndarray, metric: Metric
) -> np.ndarray:
    """Exact 'higher is closer' scores of query rows start.. against their `columns` (-1:
    nan), summed in float64 element by element: the same bits on any machine and engine."""
    b, width = columns.shape
    q = np.asarray(features[start : start + b], dtype=np.float64)
    out = np.full((b, width), np.nan, dtype=np.float64)
    for j in range(width):
        ok = columns[:, j] >= 0
        y = np.asarray(features[columns[ok, j]], dtype=np.float64)
        if metric == "cosine":
            out[ok, j] = (q[ok] * y).sum(axis=1)
        else:
            out[ok, j] = -((q[ok] - y) ** 2).sum(axis=1)
    return out


def top_k_of_candidates(
    columns: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row's candidate `columns` by their exact float32 `scores` (-inf or
    nan: excluded). Ties go to the lower column (= lower id, as rows are sorted by id);
    rows with fewer than k candidates are padded with -1 / nan."""
    b = len(columns)
    s = np.where(np.isnan(scores) | (columns < 0), -np.inf, scores).astype(np.float32)
    key = np.where(columns < 0, np.iinfo(np.int64).max, columns)
    order = np.lexsort((key, -s), axis=1)[:, :k]
    idx = np.full((b, k), -1, dtype=np.int64)
    out = np.full((b, k), np.nan, dtype=np.float32)
    best = np.take_along_axis(s, order, axis=1)
    found = np.isfinite(best)
    width = order.shape[1]
    idx[:, :width] = np.where(found, np.take_along_axis(columns, order, axis=1), -1)
    out[:, :width] = np.where(found, best, np.nan)
    return idx, out


def blas_tolerance(sq_norms: np.ndarray | None) -> float:
    """`BLAS_TOLERANCE` on the scale of the scores: Euclidean ones (and the matmul's error)
    grow with the squared norms."""
    return BLAS_TOLERANCE * (1.0 if sq_norms is None or not len(sq_norms)
                             else max(1.0, float(sq_norms.max())))


def exact_top_k_block(
    block: np.ndarray,
    features: np.ndarray,
    start: int,
    k: int,
    metric: Metric,
    tolerance: float,
    group_codes: np.ndarray | None = None,
    dup_codes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one block of scores (rows are queries start.., columns all products): the
    block's matmul scores only choose candidates; they are ranked and returned by exact
    scores, the same bits on every engine. Returns (indices, scores) padded with -1 / nan."""
    cand = candidate_columns(block, start, k, tolerance, group_codes, dup_codes)
    return top_k_of_candidates(cand, pair_scores(features, start, cand, metric), k)


def finish_scores(scores: np.ndarray, metric: Metric) -> np.ndarray:
    """Turn internal 'higher is closer' scores into published ones (cosine or distance)."""
    if metric == "euclidean":
        return np.sqrt(np.maximum(-scores, 0))
    return scores


def prepare_features(features: np.ndarray, metric: Metric) -> tuple[np.ndarray, np.ndarray | None]:
    """Features ready for `block_scores`: normalised for cosine; raw + squared norms otherwise."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if metric == "cosine":
        return l2_normalise(features), None
    x = np.asarray(features, dtype=np.float32)
    return x, np.einsum("ij,ij->i", x, x)


def top_k_neighbours(
    features: np.ndarray,
    k: int = 10,
    metric: Metric = "cosine",
    groups: np.ndarray | list | None = None,
    duplicate_keys: np.ndarray | list | None = None,
    block: int = DEFAULT_BLOCK,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row, computed in row blocks.

    `groups` restricts neighbours to rows with the same value; `duplicate_keys` (e.g. image
    sha256) excludes rows with the same key as the query. Returns (indices, scores) of
    shape (N, k): scores are cosine similarities (best first) or Euclidean distances
    (smallest first); -1 / nan pad rows with fewer than k candidates.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if block < 1:
        raise ValueError("block must be at least 1")
    x, sq = prepare_features(features, metric)
    n = len(x)
    gcodes = _codes(groups, n)
    dcodes = _codes(duplicate_keys, n)
    tolerance = blas_tolerance(sq)
    idx = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), np.nan, dtype=np.float32)
    starts = range(0, n, block)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="similarity", unit="block", total=-(-n // block))
    for start in starts:
        stop = min(start + block, n)
        s = block_scores(x, sq, start, stop, metric)
        idx[start:stop], scores[start:stop] = exact_top_k_block(
            s, x, start, k, metric, tolerance, gcodes, dcodes)
    return idx, finish_scores(scores, metric)


def pairwise_similarity_frame(
    features: np.ndarray, ids: list[str], max_bytes: int = PAIRWISE_MAX_BYTES
) -> pd.DataFrame:
    """The full cosine-similarity DataFrame (index and columns are product ids).

    This is how the original notebook worked; it needs N*N*8 bytes, so above `max_bytes`
    it refuses with a message saying how much memory it would take.
    """
    import pandas as pd

    n = len(ids)
    need = n * n * 8
    if need > max_bytes:
        raise MemoryError(
            f"a {n:,} x {n:,} similarity DataFrame needs {need / 1024**3:.1f} GiB "
            f"(limit {max_bytes / 1024**3:.1f} GiB); use top_k_neighbours instead"
        )
    x = l2_normalise(features).astype(np.float64)
    return pd.DataFrame(x @ x.T, index=list(ids), columns=list(ids))
