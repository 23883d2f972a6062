"""--index faiss: candidates from an IVF index, ranked by the exact path's scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import BuildOptions, build
from pipeline.catalog import CatalogError
from pipeline.rows import SIMILAR, RowInputs, RowRule, rows_top_k, rows_top_k_approx
from tests.pipeline_helpers import colour_extractor, make_catalog

pytest.importorskip("faiss", reason="the index extra is not installed")


def test_one_inverted_list_is_exhaustive_and_equals_the_exact_build(tmp_path: Path):
    catalog = make_catalog(tmp_path / "catalog")
    common = dict(catalog=catalog, cache_dir=tmp_path / "cache", k=5, progress=False)
    build(BuildOptions(out=tmp_path / "exact", **common), extractor=colour_extractor())
    build(BuildOptions(out=tmp_path / "faiss", index="faiss", **common),
          extractor=colour_extractor())
    for name in ("neighbours.json", "neighbours-other_colours.json"):
        assert (tmp_path / "faiss" / name).read_bytes() == (tmp_path / "exact" / name).read_bytes()
    meta = json.loads((tmp_path / "faiss" / "meta.json").read_text())
    assert meta["index"]["kind"] == "faiss-ivf-flat" and meta["index"]["lists"] == 1
    assert json.loads((tmp_path / "exact" / "meta.json").read_text())["index"] == {
        "kind": "exact"}
    with pytest.raises(CatalogError, match="--index faiss needs --metric cosine"):
        build(BuildOptions(out=tmp_path / "e", index="faiss", metric="euclidean", **common),
              extractor=colour_extractor())


def test_recall_on_clustered_vectors_and_exclusions_hold():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 32))
    x = (centres[rng.integers(0, 60, 6000)] + 0.5 * rng.normal(size=(6000, 32)))
    x = x.astype(np.float32)
    dups = [str(i) for i in range(6000)]
    dups[1] = dups[2] = "same"
    inputs = RowInputs.prepare(x, None, "cosine", None, dups)
    rule = RowRule(SIMILAR, "s", 1.0, 0.0)
    ((want, _),) = rows_top_k([rule], inputs, 10, "cosine", 0.0)
    ((got, scores),), (meta,) = rows_top_k_approx([rule], inputs, 10, 0.0, nprobe=16)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert recall >= 0.9 and meta["lists"] > 1
    assert not (got == np.arange(6000)[:, None]).any()  # never itself
    assert 2 not in got[1] and 1 not in got[2]  # nor its byte-identical photo
    assert (np.diff(scores, axis=1) <= 0).all()  # best first
