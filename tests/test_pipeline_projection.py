"""The explore map's 2-D layout: UMAP from UMAP_MIN_PRODUCTS rows, PCA below, same bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.projection import UMAP_MIN_PRODUCTS, exact_cosine_knn, pca_2d, project_2d
from tests.pipeline_helpers import build_fashion_subset, needs_shared


def blobs(n_per: int = 100, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs (centres 10 apart, unit spread) and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim))
    centres *= 10 / np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.vstack([c + rng.normal(size=(n_per, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per)


@pytest.fixture(scope="module")
def blob_map() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """One UMAP run shared by the tests (numba compiles on the first call)."""
    x, labels = blobs()
    xy, method = project_2d(x, seed=0)
    return x, labels, xy, method


def test_umap_from_the_limit_with_shape_range_and_finite_values(blob_map) -> None:
    x, _, xy, method = blob_map
    assert len(x) >= UMAP_MIN_PRODUCTS
    assert method == "umap"
    assert xy.shape == (len(x), 2)
    assert np.isfinite(xy).all()
    assert np.abs(xy).max() <= 1.0
    assert np.isclose(np.abs(xy).max(), 1.0)  # the map uses its whole frame


def test_same_input_and_seed_give_the_same_bytes(blob_map) -> None:
    x, _, xy, _ = blob_map
    again, _ = project_2d(x.copy(), seed=0)
    assert again.tobytes() == xy.tobytes()


def test_blobs_stay_apart_on_the_map(blob_map) -> None:
    _, labels, xy, _ = blob_map
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(xy), dtype=bool)
    assert d[same & off_diag].max() < d[~same].min()


def test_pca_below_the_limit() -> None:
    x, _ = blobs(n_per=(UMAP_MIN_PRODUCTS - 1) // 3)
    xy, method = project_2d(x)
    assert len(x) < UMAP_MIN_PRODUCTS
    assert method == "pca"
    assert xy.tobytes() == pca_2d(x).tobytes()
    assert np.isfinite(xy).all() and np.abs(xy).max() <= 1.0


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_catalogs_sit_at_the_centre(n: int) -> None:
    xy, method = project_2d(np.ones((n, 8), dtype=np.float32))
    assert method == "pca"
    assert xy.shape == (n, 2) and not xy.any()


def test_identical_and_zero_rows_stay_finite() -> None:
    x, _ = blobs()
    x[:20] = x[0]  # byte-identical photos
    x[-5:] = 0  # an all-black crop gives an all-zero feature
    xy, method = project_2d(x)
    assert method == "umap"
    assert np.isfinite(xy).all() and np.abs(xy).max() <= 1.0


def test_exact_neighbours_put_each_row_first() -> None:
    x, _ = blobs(n_per=10, dim=8)
    idx, dist = exact_cosine_knn(x, 5)
    assert idx.shape == dist.shape == (30, 5)
    assert (idx[:, 0] == np.arange(30)).all() and not dist[:, 0].any()
    assert (np.diff(dist, axis=1) >= 0).all()


def test_features_must_be_rows_of_vectors() -> None:
    with pytest.raises(ValueError, match="2-D"):
        project_2d(np.zeros(10))


@pytest.mark.slow
@needs_shared
def test_fashion_map_groups_article_types(tmp_path) -> None:
    """On real photos UMAP's 2-D neighbours share a product's type far more than PCA's."""
    out, _ = build_fashion_subset(tmp_path, n_catalog=300, n_held_out=0, min_type_size=1)
    products = json.loads((out / "products.json").read_text())
    x = np.load(out / "embeddings.npy").astype(np.float32)
    labels = np.array([p["attrs"]["articleType"] for p in products])

    def own_type_share(xy: np.ndarray) -> float:
        d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
        np.fill_diagonal(d, np.inf)
        near = np.argsort(d, axis=1, kind="stable")[:, :10]
        return float((labels[near] == labels[:, None]).mean())

    xy, method = project_2d(x)
    assert method == "umap"
    assert own_type_share(xy) > own_type_share(pca_2d(x)) + 0.05


def test_a_later_process_loads_umaps_compiled_code_with_the_same_bytes(tmp_path) -> None:
    """numba keeps umap's machine code on disk: a second process takes its functions from
    the cache instead of compiling them and draws the same map, byte for byte."""
    import subprocess
    import sys
    from pathlib import Path

    x, _ = blobs(n_per=40, seed=1)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import hashlib, sys\n"
        "import numpy as np\n"
        "from numba.core.registry import CPUDispatcher\n"
        "from pipeline.projection import project_2d\n"
        f"xy, method = project_2d(np.load({str(tmp_path / 'x.npy')!r}), seed=0)\n"
        "hits = sum(1 for n, m in list(sys.modules.items()) if m and n.startswith('umap.')\n"
        "           for o in list(vars(m).values())\n"
        "           if isinstance(o, CPUDispatcher) and sum(o.stats.cache_hits.values()))\n"
        "print(method, hashlib.sha256(xy.tobytes()).hexdigest(), hits)\n"
    )
    root = Path(__file__).resolve().parents[1]
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           cwd=root, timeout=600, check=True).stdout.split()
            for _ in range(2)]
    (method, digest, _), (method2, digest2, hits) = runs
    assert method == method2 == "umap" and digest == digest2
    # umap marks one of the functions it calls cache=True itself (measured: 1 hit without
    # _cache_compiled, 4 with it; the callees compile into their callers' cached code)
    assert int(hits) > 1, hits
