"""The contract-2 writer: thumbnails reused and linked, optional parts, fake folders that
are real ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.build import BuildOptions, build
from pipeline.precomputed import read_precomputed
from pipeline.writer import precomputed_meta, write_precomputed
from tests.fake_precomputed import HTML_TITLE, make_fake_precomputed
from tests.pipeline_helpers import colour_extractor, make_catalog


def products_of(shas: dict[str, str]) -> list[dict]:
    return [{"id": pid, "thumb": f"thumbs/{pid}.jpg", "sha256": sha, "attrs": {}}
            for pid, sha in sorted(shas.items())]


def write(out: Path, shas: dict[str, str], thumb_bytes, **kw) -> Path:
    meta = precomputed_meta(n_products=len(shas), k=1, metric="cosine", group_by=None,
                            model={"name": "m"}, similarity_baseline=0.0, source={})
    args = dict(embeddings=np.ones((len(shas), 2)), thumb_bytes=thumb_bytes, report=[])
    args.update(kw)
    return write_precomputed(out, meta, products_of(shas), {p: [] for p in shas}, **args)


def test_unchanged_thumbnails_are_reused_and_identical_bytes_linked(tmp_path: Path):
    out = tmp_path / "pre"
    made: list[str] = []

    def thumb(p: dict) -> bytes:
        made.append(p["id"])
        return b"same" if p["id"] in ("a", "b") else p["sha256"].encode()

    write(out, {"a": "1", "b": "2", "c": "3"}, thumb)
    assert made == ["a", "b", "c"]
    assert (out / "thumbs" / "a.jpg").stat().st_ino == (out / "thumbs" / "b.jpg").stat().st_ino
    made.clear()
    write(out, {"a": "1", "b": "2", "c": "changed", "d": "4"}, thumb)
    assert made == ["c", "d"]
    assert [(out / "thumbs" / f"{p}.jpg").read_bytes() for p in "abcd"] == [
        b"same", b"same", b"changed", b"4"]


def test_thumbnails_and_embeddings_are_optional(tmp_path: Path):
    out = write(tmp_path / "pre", {"a": "1"}, None, embeddings=None)
    assert list((out / "thumbs").iterdir()) == [] and not (out / "embeddings.npy").exists()
    assert read_precomputed(out).product("a")["thumb"] == "thumbs/a.jpg"


def test_fake_folders_have_the_shape_of_real_builds(tmp_path: Path):
    real = tmp_path / "real"
    build(BuildOptions(catalog=make_catalog(tmp_path / "catalog"), out=real, k=3,
                       cache_dir=tmp_path / "cache", progress=False),
          extractor=colour_extractor())
    fake = make_fake_precomputed(tmp_path / "fake", 30, k=3, embeddings=True)
    real_meta, fake_meta = (json.loads((f / "meta.json").read_text()) for f in (real, fake))
    assert fake_meta.keys() == real_meta.keys() and fake_meta["projection"] == "pca"
    assert fake_meta["model"].keys() == real_meta["model"].keys()
    assert sorted(p.name for p in fake.iterdir()) == sorted(p.name for p in real.iterdir())
    pre = read_precomputed(fake)
    assert pre.products[0]["title"] == HTML_TITLE
    assert pre.products[0].keys() == read_precomputed(real).products[0].keys()
    assert np.load(fake / "embeddings.npy").shape == (30, fake_meta["model"]["dim"])
    assert len(list((fake / "thumbs").iterdir())) == 30
