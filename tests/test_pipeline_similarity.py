"""Exact top-k against brute force, exclusion rules, group-by, the pairwise DataFrame."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.projection import pca_2d
from pipeline.similarity import (
    pairwise_similarity_frame,
    top_k_neighbours,
)
from tests.pipeline_helpers import exact_scores


def brute_force(x, k, metric, groups=None, dups=None):
    """The naive way: full N x N matrix, then a stable sort of every row."""
    n = len(x)
    s = exact_scores(x, metric)
    idx, val = [], []
    for i in range(n):
        cands = [
            j for j in range(n)
            if j != i
            and (groups is None or groups[j] == groups[i])
            and (dups is None or dups[j] != dups[i])
        ]
        cands.sort(key=lambda j: (-s[i, j], j))
        idx.append(cands[:k])
        val.append([s[i, j] for j in cands[:k]])
    return idx, val


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_top_k_matches_brute_force_on_random_data(metric, block):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 12)).astype(np.float32)
    idx, scores = top_k_neighbours(x, k=6, metric=metric, block=block)
    ref_idx, ref_val = brute_force(x, 6, metric)
    assert idx.tolist() == ref_idx
    want = np.array(ref_val)
    if metric == "euclidean":
        want = np.sqrt(-want)
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_ties_break_by_index_and_exact_copies_are_found(metric):
    # Few distinct vectors, many copies: exact ties everywhere, broken by index.
    rng = np.random.default_rng(2)
    distinct = rng.normal(size=(6, 4)).astype(np.float32)
    base = distinct[rng.integers(0, 6, size=40)]
    x = np.concatenate([base, base[:10]])  # rows 40..49 repeat rows 0..9 (different images)
    idx, _ = top_k_neighbours(x, k=5, metric=metric, block=9)
    ref_idx, _ = brute_force(x, 5, metric)
    assert idx.tolist() == ref_idx
    # a copy scores 1.0 / distance 0, so every row's first neighbour is an exact copy
    assert all(np.array_equal(x[idx[i][0]], x[i]) for i in range(len(x)))


def test_self_is_excluded_by_index_not_by_rank():
    # Two identical vectors: skipping "the first result" would drop the copy, not self.
    x = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    idx, scores = top_k_neighbours(x, k=2)
    assert idx[0].tolist() == [1, 3]
    assert idx[1].tolist() == [0, 3]
    assert scores[0][0] == pytest.approx(1.0)
    assert all(i not in row for i, row in enumerate(idx.tolist()))


def test_byte_identical_images_are_excluded():
    x = np.array([[1, 0], [1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    shas = ["a", "a", "b", "c"]
    idx, _ = top_k_neighbours(x, k=3, duplicate_keys=shas)
    assert 1 not in idx[0] and 0 not in idx[1]
    assert idx[0].tolist() == [2, 3, -1]  # only two candidates remain: padded
    ref_idx, _ = brute_force(x, 3, "cosine", dups=shas)
    assert [r[: len(ref)] for r, ref in zip(idx.tolist(), ref_idx, strict=True)] == ref_idx


def test_group_by_restricts_neighbours_to_the_same_group():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    groups = np.array(["men", "women", "kids"])[rng.integers(0, 3, size=60)]
    idx, _ = top_k_neighbours(x, k=4, groups=groups, block=16)
    for i, row in enumerate(idx):
        assert all(groups[j] == groups[i] for j in row if j >= 0)
    ref_idx, _ = brute_force(x, 4, "cosine", groups=list(groups))
    assert [[j for j in r if j >= 0] for r in idx.tolist()] == ref_idx


def test_small_group_pads_with_minus_one():
    x = np.eye(3, dtype=np.float32)
    idx, scores = top_k_neighbours(x, k=4, groups=["a", "a", "b"])
    assert idx[2].tolist() == [-1, -1, -1, -1]
    assert np.isnan(scores[2]).all()
    assert idx[0].tolist() == [1, -1, -1, -1]


def test_deterministic_across_block_sizes():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 32)).astype(np.float32)
    a = top_k_neighbours(x, k=10, block=1)
    b = top_k_neighbours(x, k=10, block=300)
    assert np.array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_bad_arguments_raise_at_once():
    x = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="k must be"):
        top_k_neighbours(x, k=0)
    with pytest.raises(ValueError, match="unknown metric"):
        top_k_neighbours(x, metric="manhattan")


def test_pairwise_frame_is_labelled_and_matches_top_k():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 5)).astype(np.float32)
    ids = [f"p{i:02d}" for i in range(20)]
    frame = pairwise_similarity_frame(x, ids)
    assert list(frame.index) == ids and list(frame.columns) == ids
    np.testing.assert_allclose(np.diag(frame.to_numpy()), 1.0, atol=1e-6)
    idx, _ = top_k_neighbours(x, k=3)
    row = frame.loc["p00"].drop("p00").sort_values(ascending=False)
    assert list(row.index[:3]) == [ids[j] for j in idx[0]]


def test_pairwise_frame_refuses_when_too_big_and_says_how_much():
    x = np.ones((10, 2), dtype=np.float32)
    with pytest.raises(MemoryError, match=r"needs .* GiB"):
        pairwise_similarity_frame(x, [str(i) for i in range(10)], max_bytes=100)


def test_pca_is_deterministic_and_scaled():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 10))
    a, b = pca_2d(x), pca_2d(x.copy())
    assert a.shape == (50, 2)
    assert np.array_equal(a, b)
    assert np.abs(a).max() <= 1.0 + 1e-9
    assert pca_2d(x[:2]).shape == (2, 2)
