"""Search by photo with the real shared model: semantics, bad uploads, mismatch, threads."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.models import ModelError
from pipeline.precomputed import read_precomputed
from pipeline.search import (
    PhotoSearcher,
    UploadError,
    decode_upload,
    neighbour_vote,
    resolve_model_source,
)
from tests.pipeline_helpers import FASHION, SHARED_MODEL, build_fashion_subset, needs_shared

pytestmark = [pytest.mark.slow, needs_shared]
N_CATALOG = 600
N_HELD_OUT = 30


def fashion_rows() -> list[dict]:
    with (FASHION / "styles.csv").open(encoding="utf-8") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["id"])


@pytest.fixture(scope="module")
def fashion_subset(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A catalog of 600 fashion photos built with the shared model; 30 held-out rows."""
    root = tmp_path_factory.mktemp("fashion")
    return build_fashion_subset(root, N_CATALOG, N_HELD_OUT, min_type_size=5)


@pytest.fixture(scope="module")
def searcher(fashion_subset) -> PhotoSearcher:
    s = PhotoSearcher(read_precomputed(fashion_subset[0]))
    s.preload()
    return s


def photo(pid: str) -> bytes:
    return (FASHION / "images" / f"{pid}.jpg").read_bytes()


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_held_out_photos_find_products_of_their_type(searcher, fashion_subset):
    _, held_out = fashion_subset
    type_of = {p["id"]: p["attrs"]["articleType"] for p in searcher.pre.products}
    shares, votes = [], 0
    for row in held_out:
        result = searcher.search(photo(row["id"]))
        assert len(result.neighbours) == 5
        assert [s for _, s in result.neighbours] == sorted((s for _, s in result.neighbours),
                                                            reverse=True)
        shares.append(np.mean([type_of[n] == row["articleType"] for n, _ in result.neighbours]))
        attr, label, count, k = result.vote
        assert attr == "articleType" and k == 5 and 1 <= count <= 5
        votes += label == row["articleType"]
        assert set(result.timings_ms) == {"decode", "embed", "search"}
    assert np.mean(shares) > 0.5  # the shared model's precision@5 is about 0.67
    assert votes / len(held_out) > 0.5


def test_a_catalog_photo_finds_itself_first(searcher):
    pid = searcher.ids[10]
    top_id, score = searcher.search(photo(pid)).neighbours[0]
    assert top_id == pid and score > 0.999


def test_same_preprocessing_as_the_build(searcher):
    """The upload path reproduces the stored (whitened) embedding and the stored (centred)
    colour descriptor of a catalog photo, so an upload gets the catalog's rows."""
    assert searcher.whitening is not None and searcher.colours is not None  # 600 products
    pid = searcher.ids[3]
    vec, colour, _ = searcher.embed_photo(photo(pid))
    i = searcher.pre.index[pid]
    assert vec.shape == (searcher.whitening.dims,)
    assert float(vec @ searcher.embeddings[i]) > 0.9999
    assert float(colour @ searcher.colours[i]) > 0.999


def test_an_upload_gets_every_row_of_a_catalog_product(searcher, fashion_subset):
    """Searching with a catalog photo gives (nearly) that product's precomputed rows where
    the rows are visual (`--text-weight 0`: a photo has no words); with words the product
    itself still comes first, and "other colours" never repeats "Looks like this"."""
    from pipeline.build import BuildOptions, build

    for pid in searcher.ids[20:25]:
        result = searcher.search(photo(pid))
        assert result.rows["similar"][0][0] == pid
        shown = {n for n, _ in result.rows["similar"]}
        assert not shown & {n for n, _ in result.rows["other_colours"]}
    out, _ = fashion_subset
    visual_out = out.parent / "visual"
    build(BuildOptions(
        catalog=out.parent / "images", metadata=out.parent / "styles.csv",
        title_column="productDisplayName", model=str(SHARED_MODEL), out=visual_out,
        cache_dir=out.parent / "cache", k=5, progress=False, text_weight=0.0,
        other_text_weight=0.0, department="none"))
    pre = read_precomputed(visual_out)
    visual = PhotoSearcher(pre, SHARED_MODEL)
    assert [r.key for r in visual.rules] == ["similar", "other_colours"]
    for pid in visual.ids[20:25]:
        result = visual.search(photo(pid))
        assert list(result.rows) == ["similar", "other_colours"]
        assert result.neighbours == result.rows["similar"]
        for key, found in result.rows.items():
            got = [n for n, _ in found if n != pid][:3]
            stored = [n for n, _ in pre.rows[key][pid][:3]]
            assert len(set(got) & set(stored)) >= 2, (pid, key, got, stored)


@pytest.mark.parametrize("mode", ["CMYK", "RGBA", "LA", "P", "I;16"])
def test_odd_but_valid_photos_are_searched(searcher, mode):
    img = Image.open(io.BytesIO(photo(searcher.ids[0]))).convert(mode)
    buf = io.BytesIO()
    img.save(buf, "TIFF" if mode == "CMYK" else "PNG")
    assert len(searcher.search(buf.getvalue()).neighbours) == 5


def test_animated_gif_uses_its_first_frame(searcher):
    frames = [Image.open(io.BytesIO(photo(pid))).convert("P") for pid in searcher.ids[:3]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert len(searcher.search(buf.getvalue()).neighbours) == 5


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: b"%PDF-1.4 not a photo", "cannot be used as a photo"),
        (lambda: photo("10015")[:300], "cannot be used as a photo"),
        (lambda: _png(Image.new("1", (12000, 12000))), "too many pixels"),
    ],
)
def test_bad_photos_give_a_message(searcher, make, message):
    with pytest.raises(UploadError, match=message):
        searcher.search(make())


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def test_decode_upload_checks_type_size_and_encoding():
    assert decode_upload(data_url(b"abc")) == b"abc"
    with pytest.raises(UploadError, match="not an image"):
        decode_upload(data_url(b"abc", "application/pdf"))
    with pytest.raises(UploadError, match="larger than 10 MB"):
        decode_upload(data_url(b"x" * (10 * 2**20 + 10)))
    with pytest.raises(UploadError, match="could not be read"):
        decode_upload("data:image/png;base64,***")
    with pytest.raises(UploadError, match="empty"):
        decode_upload("")


def test_concurrent_searches_are_not_mixed_up(searcher):
    pids = searcher.ids[:12]
    sequential = [searcher.search(photo(p)).neighbours for p in pids]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda p: searcher.search(photo(p)).neighbours, pids))
    assert parallel == sequential


def test_memory_does_not_grow_with_uploads(searcher):
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    bomb = _png(Image.new("1", (12000, 12000)))
    for _ in range(5):
        searcher.search(photo(searcher.ids[1]))
    before = proc.memory_info().rss
    for i in range(40):
        with contextlib.suppress(UploadError):
            searcher.search(bomb if i % 2 else photo(searcher.ids[i]))
    assert proc.memory_info().rss - before < 60 * 2**20


def test_model_mismatch_and_missing_model_are_refused(fashion_subset, tmp_path):
    meta = read_precomputed(fashion_subset[0]).meta["model"]
    assert resolve_model_source(meta, None) == str(SHARED_MODEL)
    with pytest.raises(ModelError, match="model mismatch"):
        resolve_model_source({**meta, "weights_sha256": "0" * 64}, None)
    with pytest.raises(ModelError, match=r"not found .* pass --model PATH"):
        resolve_model_source({**meta, "path": str(tmp_path / "gone.keras")}, None)
    other = tmp_path / "other.keras"
    other.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="model mismatch"):
        resolve_model_source(meta, other)


def test_neighbour_vote_ties_go_to_the_better_ranked():
    assert neighbour_vote(["a", "b", "b", "a", "c"]) == ("a", 2)
    assert neighbour_vote(["", ""]) is None
