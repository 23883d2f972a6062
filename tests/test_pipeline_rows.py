"""Recommendation rows (issue 10): colour descriptor, row rules, calibration, whitening,
--prefer, contract 2 version 2 and version-1 folders, on images whose colours and shapes
are known; the real-photo known answers are in test_pipeline_models.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.build import BuildOptions, build
from pipeline.colour import COLOUR_DIM, colour_descriptor
from pipeline.evaluate import evaluate_rows
from pipeline.features import FeatureCache, cache_key
from pipeline.models import FeatureExtractor
from pipeline.precomputed import PrecomputedError, read_precomputed
from pipeline.precomputed import score_percentile as percentile
from pipeline.rows import (
    OTHER_COLOURS,
    SIMILAR,
    RowInputs,
    RowRule,
    plan_rows,
    rows_top_k,
    score_quantiles,
)
from pipeline.whitening import WHITEN_MIN_PRODUCTS, Whitening, fit_whitening
from tests.pipeline_helpers import COLOURS, draw_product, make_catalog


class ShapeModel:
    """A colour-blind stand-in model: where the photo is not white, on an 8x8 grid."""

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        n, h, w, _ = x.shape
        mask = (x.astype(np.float32) < 235).any(axis=-1).astype(np.float32)
        return mask.reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4)).reshape(n, -1) + 0.01


def shape_extractor() -> FeatureExtractor:
    """A FeatureExtractor that sees shapes and not colours."""
    identity = {"name": "test-shape-grid", "layer": "grid8", "weights": "none",
                "weights_sha256": "1" * 64, "input_size": [64, 64], "dim": 64}
    return FeatureExtractor(identity=identity, model=ShapeModel())


def parts(pid: str) -> tuple[str, str]:
    colour, shape, _ = pid.split("-")
    return colour, shape


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rows")
    catalog = make_catalog(root / "catalog", n_variants=3)  # 4 colours x 3 shapes x 3
    out = root / "pre"
    build(BuildOptions(catalog=catalog, out=out, k=4, cache_dir=root / "cache",
                       progress=False), extractor=shape_extractor())
    return out


def test_colour_descriptor_sees_the_product_not_the_background():
    red_on_white = colour_descriptor(draw_product("red", "square"))
    red_on_grey = Image.new("RGB", (64, 80), (200, 200, 200))
    red_on_grey.paste(draw_product("red", "disc").crop((10, 10, 54, 70)).resize((44, 60)),
                      (10, 10))
    blue = colour_descriptor(draw_product("blue", "square"))
    assert red_on_white.shape == (COLOUR_DIM,) and red_on_white.dtype == np.float32
    assert np.linalg.norm(red_on_white) == pytest.approx(1.0, abs=1e-5)
    assert float(red_on_white @ blue) < 0.2
    assert float(red_on_white @ colour_descriptor(red_on_grey)) > 0.8
    # a big photo is described as its small copy (same colours, same descriptor)
    big = draw_product("red", "square").resize((640, 800), Image.Resampling.NEAREST)
    assert float(colour_descriptor(big) @ red_on_white) > 0.95
    # an all-white photo still gives a unit descriptor (all pixels count)
    assert np.isfinite(colour_descriptor(Image.new("RGB", (30, 30), "white"))).all()


def _reference_soft_histogram(lab: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The first (v1) soft histogram's corner loop, kept as written then: one bincount per
    corner, the weights as one product over the three axes (the bin coordinates did not
    change)."""
    from pipeline.colour import AB_BINS, _bin_coords

    low, frac, top = _bin_coords(lab)
    hist = np.zeros(COLOUR_DIM)
    for corner in range(8):
        step = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = np.minimum(low + step, top)
        wt = np.prod(np.where(step, frac, 1 - frac), axis=1) * weights
        flat = (idx[:, 0] * AB_BINS + idx[:, 1]) * AB_BINS + idx[:, 2]
        hist += np.bincount(flat, weights=wt, minlength=COLOUR_DIM)
    return hist


def test_the_faster_colour_code_gives_the_v1_descriptor_bit_for_bit():
    """The sRGB lookup table and the per-axis corner weights are only faster: the cache
    key's COLOUR_VERSION stays, so the values must not move by one bit."""
    from pipeline import colour as col

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(4096, 3), dtype=np.uint8)
    rgb[:256] = np.arange(256, dtype=np.uint8)[:, None]  # every value once
    assert col.srgb_to_lab(rgb).tobytes() == col.srgb_to_lab(rgb.astype(np.float64)).tobytes()
    lab = col.srgb_to_lab(rgb)
    lab[:8] = [[0, -200, 200], [100, 200, -200], [50, 0, 0], [100, 0, 0], [0, 0, 0],
               [99.99, 79.9, -79.9], [-1, 0, 0], [101, 0, 0]]  # edges and beyond
    weights = rng.random(len(lab))
    assert (col._soft_histogram(lab, weights).tobytes()
            == _reference_soft_histogram(lab, weights).tobytes())


def test_similar_row_blends_shape_and_colour(toy: Path, tmp_path: Path):
    pre = read_precomputed(toy)
    rows = {r["key"]: r for r in pre.meta["rows"]}
    assert list(rows) == [SIMILAR, OTHER_COLOURS]
    assert pre.meta["schema_version"] == 2 and pre.meta["whitening"] is None  # 36 products
    assert 0 < rows[SIMILAR]["weights"]["colour"] < 1
    for pid, pairs in pre.rows[SIMILAR].items():
        assert parts(pairs[0][0])[1] == parts(pid)[1]  # shape leads
        scores = [s for _, s in pairs]
        assert scores == sorted(scores, reverse=True)
    # with more weight on colour, a variant of the same colour and shape (shifted by a few
    # pixels) beats the same shape, same place, in another colour; then the same colour
    out = tmp_path / "colourful"
    build(BuildOptions(catalog=toy.parent / "catalog", out=out, k=4, progress=False,
                       cache_dir=toy.parent / "cache", colour_weight=0.6),
          extractor=shape_extractor())
    for pid, pairs in read_precomputed(out).rows[SIMILAR].items():
        assert parts(pairs[0][0]) == parts(pid), pid
        assert parts(pairs[1][0])[0] == parts(pid)[0], pid


def test_other_colours_row_keeps_the_shape_and_changes_the_colour(toy: Path):
    pre = read_precomputed(toy)
    for pid, pairs in pre.rows[OTHER_COLOURS].items():
        colour, shape = parts(pid)
        assert len(pairs) == 4
        assert all(parts(n)[0] != colour for n, _ in pairs), pid
        # the first row's cards are left out (3 of the 9 same-shape products in other
        # colours, where "Looks like this" shows them), and the shape still leads
        shown = {n for n, _ in pre.rows[SIMILAR][pid]}
        assert not shown & {n for n, _ in pairs}, pid
        assert all(parts(n)[1] == shape for n, _ in pairs[:3]), pid
    assert (toy / "neighbours-other_colours.json").is_file()
    evs = evaluate_rows(toy, "shape", k=3)
    assert [e.row for e in evs] == [SIMILAR, OTHER_COLOURS]
    assert evs[1].precision_at_k == 1.0
    colour_evs = {e.row: e.precision_at_k for e in evaluate_rows(toy, "colour", k=2)}
    assert colour_evs[OTHER_COLOURS] == 0.0 and colour_evs[SIMILAR] > 0.5


def test_without_colour_the_similar_row_is_shape_only(tmp_path: Path):
    catalog = make_catalog(tmp_path / "catalog", n_variants=3)
    out = tmp_path / "pre"
    build(BuildOptions(catalog=catalog, out=out, k=8, cache_dir=tmp_path / "cache",
                       progress=False, colour_weight=0.0, rows=(SIMILAR,), text_weight=0.0),
          extractor=shape_extractor())
    pre = read_precomputed(out)
    assert [r["key"] for r in pre.meta["rows"]] == [SIMILAR]
    assert pre.meta["rows"][0]["weights"] == {"shape": 1.0, "colour": 0.0, "text": 0.0,
                                                 "colour_words": 0.0}
    for pid, pairs in pre.neighbours.items():
        # a colour-blind model and no colour: first the three other colours of the very
        # same shape and place (cosine about 1; JPEG edges differ a little)
        colour, shape = parts(pid)
        same_place = {f"{c}-{shape}-{pid[-1]}" for c in COLOURS if c != colour}
        assert {n for n, _ in pairs[:3]} == same_place, pid
        assert [s for _, s in pairs[:3]] == pytest.approx([1.0] * 3, abs=0.02)


def test_score_quantiles_calibrate_scores_with_the_standard_library(toy: Path):
    pre = read_precomputed(toy)
    for row in pre.meta["rows"]:
        qs = row["score_quantiles"]
        assert len(qs) == 101 and qs == sorted(qs)
        scores = [s for pairs in pre.rows[row["key"]].values() for _, s in pairs]
        assert qs[0] == pytest.approx(min(scores), abs=1e-6)
        assert qs[-1] == pytest.approx(max(scores), abs=1e-6)
    qs = score_quantiles(np.arange(101, dtype=np.float32))
    assert percentile(50.0, qs) == 50.0 and percentile(-1, qs) == 0.0
    assert percentile(1e9, qs) == 100.0 and percentile(25.5, qs) == 25.5
    assert percentile(0.5, []) is None and score_quantiles(np.array([np.nan])) == []


def test_prefer_ranks_the_same_value_first_within_the_margin():
    # query 0 (value a): product 1 (value b) is a little closer than product 2 (value a)
    shape = np.array([[1, 0], [0.99, 0.141], [0.97, 0.243], [0, 1]], np.float32)
    shape /= np.linalg.norm(shape, axis=1, keepdims=True)
    rules = [RowRule(SIMILAR, "Looks like this", 1.0, 0.0)]
    prefer = ["a", "b", "a", "a"]
    for margin, first in ((0.0, 1), (0.05, 2)):
        inputs = RowInputs.prepare(shape, None, "cosine", prefer=prefer)
        (idx, scores), = rows_top_k(rules, inputs, 2, margin=margin)
        assert idx[0, 0] == first
        # published scores are the row's own, not the preference bonus
        assert scores[0, 0] == pytest.approx(float(shape[0] @ shape[first]), abs=1e-6)
    inputs = RowInputs.prepare(shape, None, "cosine", prefer=prefer)
    (idx, _), = rows_top_k(rules, inputs, 2, margin=0.5)  # far beyond the margin: no effect
    assert idx[0, 1] in (1, 2)


def test_plan_rows_checks_its_options():
    unit = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown row"):
        plan_rows(("similar", "nope"), unit, unit)
    with pytest.raises(ValueError, match="colour weight"):
        plan_rows(("similar",), unit, unit, colour_weight=1.0)
    # without colour descriptors there is no other-colours row
    assert [r.key for r in plan_rows((SIMILAR, OTHER_COLOURS), unit, None)] == [SIMILAR]


def test_whitening_round_trip_and_small_catalogs(tmp_path: Path):
    rng = np.random.default_rng(0)
    raw = np.abs(rng.normal(size=(WHITEN_MIN_PRODUCTS, 40))).astype(np.float32)
    raw[:, 0] *= 30  # one dominant direction
    w = fit_whitening(raw, dims=16)
    assert w is not None and w.dims == 16
    out = w.apply(raw)
    assert out.shape == (len(raw), 16)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    w.save(tmp_path / "w.npz")
    again = Whitening.load(tmp_path / "w.npz")
    assert np.array_equal(again.apply(raw[:5]), w.apply(raw[:5]))
    assert fit_whitening(raw[: WHITEN_MIN_PRODUCTS - 1]) is None
    # the same input gives the same bytes
    assert fit_whitening(raw, dims=16).projection.tobytes() == w.projection.tobytes()


def test_cli_row_options_and_evaluate_row(toy: Path, tmp_path: Path):
    from tests.test_pipeline_models import run_cli

    r = run_cli("evaluate", str(toy), "--label", "shape", "--k", "3", "--row", OTHER_COLOURS,
                "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["row"] == OTHER_COLOURS and list(data["rows"]) == [OTHER_COLOURS]
    r = run_cli("evaluate", str(toy), "--label", "shape", "--k", "3")
    assert "row 'similar'" in r.stdout and "row 'other_colours'" in r.stdout
    r = run_cli("evaluate", str(toy), "--label", "shape", "--row", "nope")
    assert r.returncode == 1 and "no such row" in r.stderr
    r = run_cli("build", str(tmp_path), "--out", str(tmp_path / "o"), "--rows", "other_colours")
    assert r.returncode == 1 and "first row must be similar" in r.stderr


def test_version_1_folders_are_still_read(toy: Path, tmp_path: Path):
    old = tmp_path / "v1"
    shutil.copytree(toy, old)
    meta = json.loads((old / "meta.json").read_text())
    for key in ("rows", "whitening", "colour", "prefer"):
        meta.pop(key)
    meta["schema_version"] = 1
    (old / "meta.json").write_text(json.dumps(meta))
    (old / "neighbours-other_colours.json").unlink()
    pre = read_precomputed(old)
    assert list(pre.rows) == [SIMILAR] and pre.rows[SIMILAR] == pre.neighbours
    meta["schema_version"] = 3
    (old / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(PrecomputedError, match="reads 1 and 2"):
        read_precomputed(old)


def test_bad_rows_in_meta_are_one_line_errors(toy: Path, tmp_path: Path):
    folder = tmp_path / "bad"
    shutil.copytree(toy, folder)
    meta = json.loads((folder / "meta.json").read_text())
    for rows, message in (
        ([{**meta["rows"][0], "file": "../etc.json"}], "file must be"),
        ([{**meta["rows"][0], "score_quantiles": [2, 1]}], "ascending"),
        ([meta["rows"][1]], "first row"),
        ([meta["rows"][0], {**meta["rows"][1], "file": "missing.json"}], "missing"),
        ("x", "non-empty list"),
    ):
        (folder / "meta.json").write_text(json.dumps({**meta, "rows": rows}))
        with pytest.raises(PrecomputedError, match=message):
            read_precomputed(folder)


def test_damaged_cache_shards_are_set_aside(tmp_path: Path):
    cache = FeatureCache.open(tmp_path, cache_key("m", "pad"))
    cache.save(["a", "b"], np.ones((2, 3)), np.ones((2, 4)))
    (cache.folder / "shard-0-torn.npz").write_bytes(b"PK\x03\x04 torn")
    (cache.folder / "shard-1-empty.npz").write_bytes(b"")
    with pytest.warns(UserWarning, match="unreadable"):
        again = FeatureCache.open(tmp_path, cache_key("m", "pad"))
    assert set(again.features) == {"a", "b"} and set(again.colours) == {"a", "b"}
    assert len(again.damaged) == 2 and not list(cache.folder.glob("shard-*-torn.npz"))
    assert cache_key("m", "pad") != cache_key("m", "stretch")
