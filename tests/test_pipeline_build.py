"""The build end to end with a fast stand-in model: outputs, determinism, caching, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.build import BuildError, BuildOptions, build
from pipeline.catalog import CatalogError, read_catalog
from pipeline.cli import main
from pipeline.precomputed import read_precomputed
from tests.pipeline_helpers import colour_extractor, draw_product, make_catalog, write_catalog_csv


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return make_catalog(tmp_path / "catalog")


def run(catalog: Path, out: Path, cache: Path, **kw) -> tuple:
    ex = colour_extractor()
    opts = BuildOptions(catalog=catalog, out=out, cache_dir=cache, progress=False, **kw)
    return build(opts, extractor=ex), ex


def test_build_writes_contract_2(catalog: Path, tmp_path: Path):
    out = tmp_path / "pre"
    summary, ex = run(catalog, out, tmp_path / "cache", k=5, batch=8)
    assert summary.n_products == 24 and summary.embedded_now == 24 and not summary.skipped
    assert ex.calls == 3  # 24 images in batches of 8
    pre = read_precomputed(out)
    assert [p["id"] for p in pre.products] == sorted(p["id"] for p in pre.products)
    assert pre.meta["k"] == 5 and pre.meta["metric"] == "cosine"
    assert 0 < pre.meta["similarity_baseline"] < 1
    assert pre.meta["model"]["name"] == "test-colour-grid" and pre.meta["model"]["resize"] == "pad"
    p = pre.product("red-disc-0")
    assert p["title"] == "Red disc <b>#0</b>" and p["price"] == 10.5 and p["currency"] == "EUR"
    assert p["attrs"] == {"colour": "red", "shape": "disc"} and len(p["xy"]) == 2
    for pid, nbrs in pre.neighbours.items():
        assert len(nbrs) == 5 and pid not in [n for n, _ in nbrs]
        scores = [s for _, s in nbrs]
        assert scores == sorted(scores, reverse=True)
    # the stand-in model sees colour: a red product's closest products are red
    assert all(n.startswith("red-") for n, _ in pre.neighbours["red-disc-0"][:5])
    emb = np.load(out / "embeddings.npy")
    assert emb.dtype == np.float16 and emb.shape == (24, 48)
    np.testing.assert_allclose(np.linalg.norm(emb.astype(np.float32), axis=1), 1, atol=2e-3)
    with Image.open(out / p["thumb"]) as t:
        assert t.format == "JPEG" and max(t.size) <= 256
    assert json.loads((out / "report.json").read_text()) == []


def test_same_input_gives_byte_identical_json(catalog: Path, tmp_path: Path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run(catalog, a, tmp_path / "cache1")
    s2, _ = run(catalog, b, tmp_path / "cache1")  # from the cache
    run(catalog, c, tmp_path / "cache2")  # from scratch
    assert s2.from_cache == 24 and s2.embedded_now == 0
    for name in ("products.json", "neighbours.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes() == (c / name).read_bytes()


def test_adding_products_embeds_only_the_new_ones(catalog: Path, tmp_path: Path):
    cache, out = tmp_path / "cache", tmp_path / "pre"
    run(catalog, out, cache)
    rows = list(json.loads(json.dumps(_csv_rows(catalog))))
    for i in range(10):
        pid = f"new-{i}"
        photo = draw_product("blue", "bar", i % 4, size=(70 + i, 80))
        photo.save(catalog / "images" / f"{pid}.png")
        rows.append({"id": pid, "image": f"images/{pid}.png", "title": f"New {i}"})
    write_catalog_csv(catalog, rows)
    summary, ex = run(catalog, out, cache, batch=4)
    assert summary.embedded_now == 10 and summary.from_cache == 24
    assert ex.calls == 3  # 10 new images in batches of 4: the model saw nothing else
    assert read_precomputed(out).meta["n_products"] == 34


def test_removed_products_leave_the_output(catalog: Path, tmp_path: Path):
    cache, out = tmp_path / "cache", tmp_path / "pre"
    run(catalog, out, cache)
    rows = [r for r in _csv_rows(catalog) if not r["id"].startswith("green")]
    write_catalog_csv(catalog, rows)
    summary, ex = run(catalog, out, cache)
    pre = read_precomputed(out)
    assert ex.calls == 0 and summary.n_products == 18
    assert not any(p["id"].startswith("green") for p in pre.products)
    assert not any(n.startswith("green") for ns in pre.neighbours.values() for n, _ in ns)
    assert not (out / "thumbs" / "green-disc-0.jpg").exists()


def test_byte_identical_images_are_not_recommended(catalog: Path, tmp_path: Path):
    shutil.copy(catalog / "images" / "red-disc-0.jpg", catalog / "images" / "copy.jpg")
    rows = [*_csv_rows(catalog), {"id": "copy", "image": "images/copy.jpg", "title": "Copy"}]
    write_catalog_csv(catalog, rows)
    summary, _ex = run(catalog, tmp_path / "pre", tmp_path / "cache")
    assert summary.embedded_now == 24  # the copy is embedded once
    pre = read_precomputed(tmp_path / "pre")
    assert "copy" not in [n for n, _ in pre.neighbours["red-disc-0"]]
    assert "red-disc-0" not in [n for n, _ in pre.neighbours["copy"]]


def test_group_by_and_euclidean(catalog: Path, tmp_path: Path):
    run(catalog, tmp_path / "pre", tmp_path / "cache", group_by="shape", metric="euclidean", k=3)
    pre = read_precomputed(tmp_path / "pre")
    assert pre.meta["group_by"] == "shape" and pre.meta["metric"] == "euclidean"
    for pid, nbrs in pre.neighbours.items():
        shape = pre.product(pid)["attrs"]["shape"]
        assert all(pre.product(n)["attrs"]["shape"] == shape for n, _ in nbrs)
        dists = [s for _, s in nbrs]
        assert dists == sorted(dists)  # distances: smallest first


def test_unknown_group_by_column_is_refused(catalog: Path, tmp_path: Path):
    with pytest.raises(CatalogError, match="--group-by 'size': no such column"):
        run(catalog, tmp_path / "pre", tmp_path / "cache", group_by="size")


def test_export_pairwise_dataframe(catalog: Path, tmp_path: Path):
    import pandas as pd

    run(catalog, tmp_path / "pre", tmp_path / "cache", export_pairwise=tmp_path / "sim.csv")
    frame = pd.read_csv(tmp_path / "sim.csv", index_col=0)
    assert frame.shape == (24, 24) and frame.loc["red-disc-0", "red-disc-0"] == pytest.approx(1)


def _csv_rows(catalog: Path) -> list[dict]:
    import csv

    with (catalog / "catalog.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---- inputs: bare folders, metadata CSVs -------------------------------------------------


def test_bare_folder_ids_from_file_names(tmp_path: Path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    draw_product("red", "disc").save(folder / "Red Dress (1).jpg")
    draw_product("blue", "bar").save(folder / "sub" / "b.png")
    rows = read_catalog(folder)
    assert [r.id for r in rows] == ["Red-Dress-1", "sub-b"]
    summary, _ = run(folder, tmp_path / "pre", tmp_path / "cache", k=1)
    assert summary.n_products == 2


def test_metadata_csv_with_other_column_names(tmp_path: Path):
    images = tmp_path / "images"
    images.mkdir()
    meta = tmp_path / "styles.csv"
    lines = ["id,gender,articleType,productDisplayName"]
    for i, (colour, shape) in enumerate([("red", "disc"), ("blue", "bar"), ("green", "square")]):
        draw_product(colour, shape).save(images / f"{1000 + i}.jpg")
        lines.append(f"{1000 + i},Men,{shape},Nice {colour} {shape}")
    meta.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match="no id column 'styleId'"):
        read_catalog(images, meta, id_column="styleId")
    rows = read_catalog(images, meta, title_column="productDisplayName")
    assert rows[0].id == "1000" and rows[0].title == "Nice red disc"
    assert rows[0].attrs == {"gender": "Men", "articleType": "disc"}


# ---- bad input ---------------------------------------------------------------------------


def test_bad_images_are_skipped_and_reported(catalog: Path, tmp_path: Path):
    imgs = catalog / "images"
    (imgs / "text.jpg").write_text("this is not an image")
    good = (imgs / "red-disc-0.jpg").read_bytes()
    (imgs / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (imgs / "empty.png").write_bytes(b"")
    rows = _csv_rows(catalog) + [
        {"id": n, "image": f"images/{f}"}
        for n, f in [("text", "text.jpg"), ("truncated", "truncated.jpg"),
                     ("empty", "empty.png"), ("gone", "gone.jpg")]
    ]
    write_catalog_csv(catalog, rows)
    summary, _ = run(catalog, tmp_path / "pre", tmp_path / "cache")
    assert summary.n_products == 24
    reasons = {s["id"]: s["error"] for s in summary.skipped}
    assert set(reasons) == {"text", "truncated", "empty", "gone"}
    assert reasons["gone"] == "image file not found"
    assert "not an image" in reasons["text"]
    report = json.loads((tmp_path / "pre" / "report.json").read_text())
    assert {r["id"] for r in report} == set(reasons)
    assert "4 skipped" in summary.line()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "catalog folder not found"),
        (lambda p: p.mkdir(), "empty catalog"),
        (lambda p: (p.mkdir(), (p / "catalog.csv").write_text("sku,image\n1,a.jpg\n")),
         "no id column 'id'"),
        (lambda p: (p.mkdir(), (p / "catalog.csv").write_text("id,image\na,1\nb,2\na,3\n")),
         "line 4: duplicate id 'a' (first on line 2)"),
        (lambda p: (p.mkdir(), (p / "catalog.csv").write_text("id,image\na b,a.jpg\n")),
         "not filesystem-safe"),
        (lambda p: (p.mkdir(), (p / "catalog.csv").write_text("id,title\na,A\n")),
         "--image-column 'image' not in columns"),
        (lambda p: (p.mkdir(), (p / "catalog.csv").write_bytes(b"id,image\n\xff\xfe,a.jpg\n")),
         "not UTF-8"),
    ],
)
def test_invalid_catalogs_give_one_line_and_exit_1(tmp_path, capsys, setup, message):
    cat = tmp_path / "cat"
    setup(cat)
    code = main(["build", str(cat), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert message in err and err.count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_nothing_usable_is_an_error(tmp_path: Path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_text("nope")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n")
    with pytest.raises(BuildError, match="no usable images"):
        run(folder, tmp_path / "pre", tmp_path / "cache")
    assert not (tmp_path / "pre").exists()


def test_crash_while_writing_keeps_the_old_folder(catalog: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "pre"
    run(catalog, out, tmp_path / "cache")
    before = (out / "neighbours.json").read_bytes()
    import pipeline.writer as writer

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "dump_json", boom)
    with pytest.raises(RuntimeError):
        run(catalog, out, tmp_path / "cache", k=3)
    assert (out / "neighbours.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pre")] == []


def test_similarity_baseline_is_the_mean_pairwise_cosine():
    from pipeline.build import similarity_baseline
    from pipeline.similarity import l2_normalise

    rng = np.random.default_rng(0)
    x = l2_normalise(np.abs(rng.normal(size=(50, 8))))
    full = x.astype(np.float64) @ x.T.astype(np.float64)
    want = (full.sum() - np.trace(full)) / (50 * 49)
    assert similarity_baseline(x) == pytest.approx(want, abs=1e-6)
    assert similarity_baseline(x[:1]) == 0.0


# ---- thumbnails hosted elsewhere, slug size ----------------------------------------------

CDN = "https://cdn.example.com/shop/thumbs"


def test_thumb_base_url_gives_absolute_thumbs(catalog: Path, tmp_path: Path):
    out = tmp_path / "pre"
    summary, _ = run(catalog, out, tmp_path / "cache", thumb_base_url=CDN + "//")
    pre = read_precomputed(out)
    assert pre.meta["thumb_base_url"] == CDN + "/"
    assert {p["thumb"] for p in pre.products} == {f"{CDN}/{p['id']}.jpg" for p in pre.products}
    for p in pre.products:  # still written here, for the operator to upload
        with Image.open(out / "thumbs" / f"{p['id']}.jpg") as t:
            assert t.format == "JPEG"
    assert summary.external_thumbs
    assert "without the .npy/.npz arrays and thumbs/" in summary.slug_line()
    from pipeline.build import slug_size

    thumbs = sum(f.stat().st_size for f in (out / "thumbs").iterdir())
    assert summary.slug_bytes == slug_size(out) - thumbs > 0
    assert slug_size(out) == sum(
        f.stat().st_size for f in out.rglob("*")
        if f.is_file() and f.suffix not in (".npy", ".npz")  # what .slugignore leaves out
    )
    # a rebuild reuses the local thumbnails although products.json names URLs
    run(catalog, out, tmp_path / "cache", thumb_base_url=CDN)
    assert len(list((out / "thumbs").iterdir())) == 24


def test_local_thumbs_by_default(catalog: Path, tmp_path: Path):
    summary, _ = run(catalog, tmp_path / "pre", tmp_path / "cache")
    pre = read_precomputed(tmp_path / "pre")
    assert pre.meta["thumb_base_url"] is None
    assert pre.product("red-disc-0")["thumb"] == "thumbs/red-disc-0.jpg"
    assert not summary.external_thumbs and summary.slug_warning() is None


@pytest.mark.parametrize(
    "url", ["ftp://cdn.example.com/t/", "cdn.example.com/thumbs", "https:///thumbs",
            "https://cdn.example.com/t?v=2"],
)
def test_thumb_base_url_must_be_http(catalog: Path, tmp_path: Path, capsys, url: str):
    code = main(["build", str(catalog), "--out", str(tmp_path / "o"), "--no-progress",
                 "--thumb-base-url", url])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"error: --thumb-base-url {url}: must ")
    assert "\n" not in err and not (tmp_path / "o").exists()


def test_slug_size_line_and_warning_over_budget(catalog: Path, tmp_path: Path, capsys,
                                                monkeypatch):
    import pipeline.build

    monkeypatch.setattr(pipeline.build, "load_extractor", lambda *a: colour_extractor())
    out = tmp_path / "pre"
    args = ["build", str(catalog), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", "--thumb-base-url", CDN]
    assert main([*args, "--slug-budget-mb", "0.001"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[-2].startswith(f"slug size of {out}: ") and "24 products" in lines[-1]
    (warning,) = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert "over the 0.001 MB budget (--slug-budget-mb)" in warning
    assert main(args) == 0  # default budget: 300 MB
    assert "warning:" not in capsys.readouterr().err
