"""2-D map coordinates of the catalog for the app's explore view: UMAP, PCA for tiny catalogs.

`project_2d` is what the build calls; `pca_2d` stays as the small-catalog method and the
baseline that bench/bench_projection.py compares UMAP with.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from .similarity import top_k_neighbours

# Smallest catalog that gets UMAP; below it, PCA. See `project_2d` for the measurement.
UMAP_MIN_PRODUCTS = 100
UMAP_N_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
# Below this many rows UMAP itself computes all pairwise distances (umap_.py, "small data");
# we hand it the same exact neighbours from numpy instead of its per-pair Python loop.
UMAP_EXACT_KNN_MAX = 4096


def pca_2d(features: np.ndarray) -> np.ndarray:
    """Project rows onto their first two principal components, scaled into [-1, 1].

    Signs are fixed (largest loading positive) so the same input gives the same map.
    """
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if n < 3:
        return np.zeros((n, 2))
    x = x - x.mean(axis=0)
    if x.shape[1] <= n:  # eigenvectors of the d x d covariance: cheap for many rows
        vals, vecs = np.linalg.eigh(x.T @ x)
        comps = vecs[:, np.argsort(vals)[::-1][:2]]
    else:  # fewer rows than dimensions: SVD of the data itself
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        comps = vt[:2].T
    for j in range(comps.shape[1]):
        if comps[np.argmax(np.abs(comps[:, j])), j] < 0:
            comps[:, j] = -comps[:, j]
    xy = x @ comps
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    scale = np.abs(xy).max(axis=0)
    return xy / np.where(scale == 0, 1, scale)


def exact_cosine_knn(features: np.ndarray, n_neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's `precomputed_knn`: each row itself first (distance 0), then its nearest rows.

    Cosine distances (1 - similarity) from the pipeline's block top-k, so BLAS does the
    work that umap would do with one Python call per pair (about 4 s for 2,000 rows).
    """
    n = len(features)
    idx, sims = top_k_neighbours(features, k=n_neighbours - 1, metric="cosine")
    knn_indices = np.hstack([np.arange(n)[:, None], idx]).astype(np.int32)
    knn_dists = np.hstack([np.zeros((n, 1)), np.maximum(1.0 - sims, 0.0)]).astype(np.float32)
    return knn_indices, knn_dists


def _import_umap() -> Any:
    """`umap`, without the TensorFlow import its package `__init__` makes for
    ParametricUMAP (which we never use) when TensorFlow is not loaded yet: about 2-3 s
    saved in a process that has no model, such as a Dask build's client. A `None` entry in
    `sys.modules` makes that import fail, and umap falls back to its stub (it catches the
    ImportError); the entry is removed again, so TensorFlow stays importable afterwards.
    """
    if "umap" in sys.modules or "tensorflow" in sys.modules:
        import umap  # numba JIT and pynndescent: only the build pays for them
    else:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ImportWarning)
                import umap
        finally:
            if sys.modules.get("tensorflow", 0) is None:
                del sys.modules["tensorflow"]
    _cache_compiled(("umap.", "pynndescent."))
    return umap


def _cache_compiled(prefixes: tuple[str, ...]) -> None:
    """Let numba keep the machine code of the loaded modules' jitted functions on disk
    (its `cache=True`, which umap sets on few of them), so a build's first UMAP call
    loads it instead of compiling again: about 2 s instead of 6.5-10 s from the second
    build on. Same code, same results; the cache sits in the package's __pycache__ (or
    numba's user cache folder when that is read-only) and follows the source files."""
    from numba.core.registry import CPUDispatcher

    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(prefixes):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, CPUDispatcher) and type(obj._cache).__name__ == "NullCache":
                try:
                    obj.enable_caching()
                except RuntimeError:  # no writable cache folder: compile as before
                    return


def umap_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """UMAP of the rows (cosine), centred and scaled into [-1, 1] with one factor for both axes.

    One factor, not one per axis as in `pca_2d`: UMAP's distances mean the same in every
    direction, and stretching the narrow axis would pull clusters apart that are not.
    Needs at least 3 rows; `random_state=seed` makes it deterministic (single-threaded).
    """
    umap = _import_umap()
    x = np.asarray(features, dtype=np.float32)
    n = len(x)
    if n < 3:
        raise ValueError(f"UMAP needs at least 3 rows, got {n}; use pca_2d")
    n_neighbours = min(UMAP_N_NEIGHBOURS, n - 1)
    knn = exact_cosine_knn(x, n_neighbours) if n < UMAP_EXACT_KNN_MAX else (None, None, None)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbours,
        min_dist=UMAP_MIN_DIST,
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # what random_state implies anyway; saying it silences umap's warning
        precomputed_knn=knn,
    )
    with warnings.catch_warnings():
        # we never call transform(), so the missing NN-descent search index does not matter
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        # functions numba cannot keep (dynamic globals) are compiled as before
        warnings.filterwarnings("ignore", message=r"Cannot cache compiled function")
        xy = reducer.fit_transform(x).astype(np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    half = float((hi - lo).max()) / 2
    return (xy - (lo + hi) / 2) / (half if half > 0 else 1.0)


def project_2d(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """Map coordinates in [-1, 1] of each row and the method used: "umap" or "pca".

    UMAP (15 cosine neighbours, min_dist 0.1, fixed seed) for catalogs of at least
    `UMAP_MIN_PRODUCTS` rows, PCA below. Same input and seed, same bytes.

    Why 100: UMAP needs n_neighbors < n, and on a tiny catalog its 15 "local" neighbours
    are a large share of everything, so the layout is mostly its random start. Measured on
    random subsets of fashion-small-2k (shared MobileNet features, 16 subsets per size,
    trustworthiness k=10): UMAP beats PCA in 11/16 subsets of 50, 14/16 of 64 and 16/16
    from 80 up (100: 0.909 vs 0.864; 2,000: 0.97 vs 0.84). 100 leaves a margin, and the
    small catalogs of tests and demos skip numba's compile time.

    Cost (bench/bench_projection.py, 2,000 x 1,024, 2 shared cores): 6.5 s for the first
    call in a process while numba compiles umap's functions, about 2-3 s once
    `_cache_compiled` has kept their machine code on disk (the second build on), 2.1 s
    warm (1.8 s on the build's whitened 256-d features); PCA 0.2 s. `import umap` takes
    about 2.7 s, half of it TensorFlow for umap's ParametricUMAP, which `_import_umap`
    skips where the model has not loaded it (a Dask build's client).
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (rows x dims), got shape {x.shape}")
    if len(x) < UMAP_MIN_PRODUCTS:
        return pca_2d(x), "pca"
    return umap_2d(x, seed), "umap"
