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
    features: np.ndarray, sq_norms: np.ndarray | None, start: int, stop: int, metric: Metric
) -> np.ndarray:
    """Similarity of rows [start, stop) against all rows, as 'higher is closer' float32.

    For `cosine`, `features` must already be L2-normalised and the value is the cosine
    similarity. For `euclidean` the value is minus the squared distance.
    """
    q = features[start:stop]
    s = q @ features.T
    if metric == "euclidean":
        assert sq_norms is not None
        s = 2 * s - sq_norms[start:stop, None] - sq_norms[None, :]
    return s


def top_k_block(
    scores: np.ndarray,
    start: int,
    k: int,
    group_codes: np.ndarray | None = None,
    dup_codes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one block of scores (rows are queries start.., columns all products).

    Self, products with a byte-identical image (same dup code) and, with groups,
    products of another group are excluded. Ties go to the lower index (= lower id, as
    rows are sorted by id). Returns (indices, scores) padded with -1 / nan when fewer
    than k candidates exist.
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    b, n = s.shape
    rows = np.arange(b)
    s[rows, start + rows] = -np.inf
    if dup_codes is not None:
        s[dup_codes[start : start + b, None] == dup_codes[None, :]] = -np.inf
    if group_codes is not None:
        s[group_codes[start : start + b, None] != group_codes[None, :]] = -np.inf
    kk = min(k, n - 1) if n > 1 else 0
    idx = np.full((b, k), -1, dtype=np.int64)
    out = np.full((b, k), np.nan, dtype=np.float32)
    if kk <= 0:
        return idx, out
    # k-th largest value per row. Rows where exactly kk values reach it (the usual case)
    # take the argpartition result; rows with ties at the boundary are sorted exactly.
    part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    vals = np.take_along_axis(s, part, axis=1)
    kth = vals.min(axis=1)
    at_least = (s >= kth[:, None]).sum(axis=1)
    clean = np.isfinite(kth) & (at_least == kk)
    order = np.lexsort((part, -vals), axis=1)
    idx[clean, :kk] = np.take_along_axis(part, order, axis=1)[clean]
    out[clean, :kk] = np.take_along_axis(vals, order, axis=1)[clean]
    for r in np.flatnonzero(~clean):
        finite = np.isfinite(s[r])
        cand = np.flatnonzero(s[r] >= kth[r]) if np.isfinite(kth[r]) else np.flatnonzero(finite)
        chosen = cand[np.lexsort((cand, -s[r, cand]))[:kk]]
        idx[r, : len(chosen)] = chosen
        out[r, : len(chosen)] = s[r, chosen]
    return idx, out


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
    idx = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), np.nan, dtype=np.float32)
    starts = range(0, n, block)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="similarity", unit="block", total=-(-n // block))
    for start in starts:
        stop = min(start + block, n)
        s = block_scores(x, sq, start, stop, metric)
        idx[start:stop], scores[start:stop] = top_k_block(s, start, k, gcodes, dcodes)
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
