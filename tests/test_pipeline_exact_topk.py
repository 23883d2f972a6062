"""The rows' top-k is exact and engine-independent: the block's float32 matmul only picks
candidates, which are ranked by exact float64 scores, so BLAS rounding (threads, kernels,
Dask workers) cannot change a byte; checked against brute force with ties, byte-identical
images, groups and --prefer."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline.rows as rows_mod
from pipeline.departments import compatible
from pipeline.rows import (
    COLOUR_WORDS,
    OTHER_COLOURS,
    SIMILAR,
    TEXT,
    RowInputs,
    RowRule,
    plan_rows,
    rows_top_k,
)
from pipeline.similarity import l2_normalise, top_k_neighbours
from tests.pipeline_helpers import exact_scores


def data(n: int = 300, d: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[10:16] = x[9]  # six exact copies: ties in every score
    x[40:43] = x[39] * np.float32(3)  # same direction, other length
    colour = np.abs(rng.normal(size=(n, 8))).astype(np.float32)
    colour[10:16] = colour[9]
    colour = colour - colour.mean(axis=0)
    colour /= np.linalg.norm(colour, axis=1, keepdims=True)
    groups = rng.choice(["a", "b", "c"], size=n).tolist()
    groups[9:16] = ["a"] * 7
    prefer = rng.choice(["m", "w"], size=n).tolist()
    dups = [str(i) for i in range(n)]
    dups[11] = dups[12] = "same-photo"
    return x, colour, groups, prefer, dups


def brute_force(rule: RowRule, x, colour, metric, groups, prefer, dups, k, margin,
                exclude=None, text=None, depts=None):
    """Every pair in float64, ranked by (float32 score + bonus - department penalty desc,
    index asc); `exclude`: an earlier row's indices per product, left out."""
    n = len(x)
    shape = exact_scores(x, metric)
    col = colour.astype(np.float64) @ colour.astype(np.float64).T if colour is not None else None
    sims = {name: v.astype(np.float64) @ v.astype(np.float64).T for name, v in (text or {}).items()}
    score = rule.scores(shape, col, text=sims)
    idx = np.full((n, k), -1)
    out = np.full((n, k), np.nan, np.float32)
    for i in range(n):
        cands = []
        for j in range(n):
            if j == i or dups[i] == dups[j] or (groups and groups[i] != groups[j]):
                continue
            if not np.isfinite(score[i, j]) or (exclude is not None and j in exclude[i]):
                continue
            bonus = np.float32(margin) if prefer and prefer[i] == prefer[j] and margin else 0
            if depts is not None and not compatible(depts[i], depts[j]):
                bonus -= np.float32(rows_mod.DEPARTMENT_PENALTY)
            cands.append((-(score[i, j] + bonus), j))
        cands.sort()
        for r, (_, j) in enumerate(cands[:k]):
            idx[i, r], out[i, r] = j, score[i, j]
    return idx, out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("with_groups", [False, True])
def test_rows_equal_brute_force_with_ties_duplicates_groups_and_prefer(metric, with_groups):
    x, colour, groups, prefer, dups = data()
    k, margin = 7, 0.05
    groups = groups if with_groups else None
    if metric == "cosine":
        rules = plan_rows((SIMILAR, OTHER_COLOURS), l2_normalise(x), colour, 0.4, 0.6)
        inputs = RowInputs.prepare(x, colour, metric, groups, dups, prefer)
    else:
        rules = [RowRule(SIMILAR, "Looks like this", 1.0, 0.0)]
        inputs = RowInputs.prepare(x, None, metric, groups, dups, prefer)
        colour = None
    found = rows_top_k(rules, inputs, k, metric, margin, block=64)
    wanted: dict[str, np.ndarray] = {}
    for rule, (idx, scores) in zip(rules, found, strict=True):
        want_idx, want = brute_force(rule, x, colour, metric, groups, prefer, dups, k, margin,
                                     wanted.get(rule.exclude_row or ""))
        wanted[rule.key] = want_idx
        assert np.array_equal(idx, want_idx)
        if metric == "euclidean":
            want = np.sqrt(np.maximum(-want, 0))
        np.testing.assert_allclose(scores, want, rtol=0, atol=1e-6)
    # the copies tie: ranked by index, the same-photo pair never recommends itself
    sim_idx = found[0][0]
    assert 12 not in sim_idx[11] and 11 not in sim_idx[12]


def test_matmul_rounding_does_not_change_a_byte(monkeypatch):
    """Noise of BLAS size on every block score (another thread count or CPU) gives the same
    indices and the same score bits."""
    x, colour, _groups, prefer, dups = data(seed=1)
    rules = plan_rows((SIMILAR, OTHER_COLOURS), l2_normalise(x), colour, 0.4, 0.6)
    inputs = RowInputs.prepare(x, colour, "cosine", None, dups, prefer)
    clean = rows_top_k(rules, inputs, 10, "cosine", 0.05, block=100)
    real = rows_mod.block_scores
    rng = np.random.default_rng(7)

    def noisy(*args):
        s = real(*args)
        return s + rng.uniform(-3e-6, 3e-6, size=s.shape).astype(np.float32)

    monkeypatch.setattr(rows_mod, "block_scores", noisy)
    for block in (100, 37):
        again = rows_top_k(rules, inputs, 10, "cosine", 0.05, block=block)
        for (ci, cs), (ai, as_) in zip(clean, again, strict=True):
            assert np.array_equal(ci, ai) and cs.tobytes() == as_.tobytes()


def test_top_k_neighbours_takes_the_same_exact_path():
    x, _colour, groups, _prefer, dups = data(seed=2)
    inputs = RowInputs.prepare(x, None, "cosine", groups, dups)
    (want,) = rows_top_k([RowRule(SIMILAR, "s", 1.0, 0.0)], inputs, 5, "cosine", 0.0, 50)
    got = top_k_neighbours(x, 5, "cosine", groups, dups, block=50)
    assert np.array_equal(got[0], want[0]) and got[1].tobytes() == want[1].tobytes()


@pytest.mark.parametrize("block,threads", [(16, 1), (16, 3), (64, 2), (1000, 2)])
def test_block_pairs_equal_the_row_block_path_with_many_near_ties(block, threads):
    """30 copies of one product outnumber the k + 8 pairs kept per row: those rows are
    scanned whole, and the result is still the brute-force one and the row-block path's
    (one block of rows against everything), on one thread or on several over tiles."""
    x, colour, groups, prefer, dups = data(n=200, seed=3)
    x[100:130] = x[99]
    colour[100:130] = colour[99]
    rules = plan_rows((SIMILAR, OTHER_COLOURS), l2_normalise(x), colour, 0.4, 0.6)
    inputs = RowInputs.prepare(x, colour, "cosine", groups, dups, prefer)
    found = rows_top_k(rules, inputs, 5, "cosine", 0.05, block=block, threads=threads)
    per_block = [rows_mod.rows_top_k_block(
        rules, inputs.shape, inputs.sq_norms, inputs.colour, s, min(s + 50, 200), 5, "cosine",
        inputs.group_codes, inputs.dup_codes, inputs.prefer_codes, 0.05) for s in (0, 50, 100, 150)]
    wanted: dict[str, np.ndarray] = {}
    for r, (rule, (idx, scores)) in enumerate(zip(rules, found, strict=True)):
        want_idx, _ = brute_force(rule, x, colour, "cosine", groups, prefer, dups, 5, 0.05,
                                  wanted.get(rule.exclude_row or ""))
        wanted[rule.key] = want_idx
        assert np.array_equal(idx, want_idx)
        assert np.array_equal(idx, np.concatenate([b[r][0] for b in per_block]))
        assert scores.tobytes() == np.concatenate([b[r][1] for b in per_block]).tobytes()


@pytest.mark.parametrize("block,threads", [(64, 1), (50, 2), (1000, 1)])
def test_text_and_departments_equal_brute_force(block, threads):
    """Rows with word signals (text and colour words for the first, text for the second), the
    department penalty (unisex and unknown go with all; a department of two products
    falls back to others) and the first row's cards left out of the second: the same as
    brute force, on any block size and thread count."""
    x, colour, _groups, prefer, dups = data(n=240, seed=5)
    rng = np.random.default_rng(9)
    text = {name: l2_normalise(rng.normal(size=(240, 12)).astype(np.float32))
            for name in (TEXT, COLOUR_WORDS)}
    text[TEXT][10:16] = text[TEXT][9]  # ties in the text too
    depts = rng.choice(["men", "women", "unisex", "kids", "boys", None], size=240).tolist()
    depts[200:202] = ["baby", "baby"]  # too few for k: filled up from other departments
    rules = plan_rows((SIMILAR, OTHER_COLOURS), l2_normalise(x), colour, 0.4, 0.6,
                      text=text, text_weight=0.3, other_text_weight=0.5)
    assert rules[0].text > 0 and rules[0].colour_words > 0 and rules[1].text > 0
    assert rules[1].colour_words == 0 and rules[1].exclude_row == SIMILAR
    inputs = RowInputs.prepare(x, colour, "cosine", None, dups, prefer, text, depts)
    found = rows_top_k(rules, inputs, 6, "cosine", 0.05, block=block, threads=threads)
    wanted: dict[str, np.ndarray] = {}
    for rule, (idx, scores) in zip(rules, found, strict=True):
        want_idx, want = brute_force(rule, x, colour, "cosine", None, prefer, dups, 6, 0.05,
                                     wanted.get(rule.exclude_row or ""), text, depts)
        wanted[rule.key] = want_idx
        assert np.array_equal(idx, want_idx), rule.key
        np.testing.assert_allclose(scores, want, rtol=0, atol=1e-6)
    similar, other = found[0][0], found[1][0]
    for i in range(240):
        assert not set(similar[i]) & set(other[i])  # no card of the first row again
        if depts[i] in ("men", "women"):  # enough of their own: no other department
            assert all(compatible(depts[i], depts[j]) for j in similar[i])
    assert {depts[j] for j in similar[200]} - {"baby", "unisex", None, "kids"} == set()
