"""Approximate candidates for the rows' top-k (`--index faiss`): an inverted-file index
(faiss IndexIVFFlat, inner product) instead of the exact O(N²) scan, for catalogs of
millions of products.

The index only proposes candidates; `rows.rows_top_k_approx` ranks them with the same
exact scores as the exact path, so what is approximate is only which products are
considered (recall@k, measured by `bench/bench_ann.py`). faiss is imported inside the
function that needs it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

INDEXES = ("exact", "faiss")
DEFAULT_NPROBE = 32
# From here the build suggests --index faiss: the exact top-k grows as N², the index's
# queries as about N^1.5 (bench/bench_ann.py, README "Catalogs of millions").
SUGGEST_FROM = 200_000
TRAIN_PER_LIST = 40  # training vectors per inverted list (faiss warns below 39)
SEARCH_BATCH = 16_384  # queries per faiss search call (bounds the distance buffers)


def ivf_lists(n: int) -> int:
    """Inverted lists for `n` vectors: about 4·sqrt(n) (1M -> 4,000), at least 1."""
    return max(1, min(n // TRAIN_PER_LIST, int(4 * math.sqrt(n))))


def faiss_candidates(
    vectors: np.ndarray, width: int, nprobe: int = DEFAULT_NPROBE, seed: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """Each row's `width` best rows by inner product from an IVF-Flat index over all rows
    (itself included), padded with -1; and the index's description for meta.json."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    nlist = ivf_lists(n)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    train = x[np.sort(rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False))]
    index.cp.seed = seed
    index.train(train)
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    width = min(width, n)
    out = np.empty((n, width), dtype=np.int64)
    for start in range(0, n, SEARCH_BATCH):
        _, found = index.search(x[start : start + SEARCH_BATCH], width)
        out[start : start + len(found)] = found
    return out, {"kind": "faiss-ivf-flat", "lists": nlist, "nprobe": int(index.nprobe),
                 "candidates": width}
