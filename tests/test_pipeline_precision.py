"""--precision bfloat16 against float32 with the shared MobileNet on fashion-small-2k: the
quality gate of issue 12 (top-10 overlap >= 0.95 on average, articleType precision@5
within 0.003), and dynamic mode embedding an upload in the catalog's precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.build import BuildOptions, build
from pipeline.evaluate import evaluate
from tests.pipeline_helpers import FASHION, SHARED_MODEL, needs_shared

pytestmark = [pytest.mark.slow, needs_shared]


def fashion(out: Path, cache: Path, precision: str) -> Path:
    build(BuildOptions(
        catalog=FASHION / "images", metadata=FASHION / "styles.csv",
        title_column="productDisplayName", model=str(SHARED_MODEL), out=out,
        cache_dir=cache, k=10, progress=False, precision=precision,
    ))
    return out


def test_bfloat16_keeps_the_neighbours_and_the_precision(tmp_path: Path):
    cache = tmp_path / "cache"
    fp32 = fashion(tmp_path / "fp32", cache, "float32")
    bf16 = fashion(tmp_path / "bf16", cache, "bfloat16")
    assert json.loads((bf16 / "meta.json").read_text())["model"]["precision"] == "bfloat16"
    for name in ("neighbours.json", "neighbours-other_colours.json"):
        a = json.loads((fp32 / name).read_text())
        b = json.loads((bf16 / name).read_text())
        overlap = [len({n for n, _ in a[p]} & {n for n, _ in b[p]}) / max(len(a[p]), 1)
                   for p in a]
        assert sum(overlap) / len(overlap) >= 0.95, name
    p32 = evaluate(fp32, "articleType", k=5).precision_at_k
    p16 = evaluate(bf16, "articleType", k=5).precision_at_k
    assert abs(p32 - p16) <= 0.003


def test_dynamic_mode_loads_the_model_in_the_catalogs_precision(tmp_path: Path, monkeypatch):
    import pipeline.models as models
    from pipeline.precomputed import read_precomputed
    from pipeline.search import PhotoSearcher

    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((FASHION / "images").iterdir())[:12]:
        (images / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "pre"
    build(BuildOptions(catalog=images, model=str(SHARED_MODEL), out=out, k=3,
                       cache_dir=tmp_path / "cache", progress=False, precision="bfloat16"))
    asked: list[str] = []
    real = models.load_extractor

    def spy(*args, **kw):
        asked.append(kw.get("precision", "float32"))
        return real(*args, **kw)

    monkeypatch.setattr(models, "load_extractor", spy)
    searcher = PhotoSearcher(read_precomputed(out), model_path=SHARED_MODEL)
    assert searcher.preload().identity["precision"] == "bfloat16"
    assert asked == ["bfloat16"]
