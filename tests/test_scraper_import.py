"""Image validation and ``python -m scraper import`` (local folders, Kaggle styles.csv)."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from scraper import ScraperError
from scraper.cli import main
from scraper.demo_shop.server import _bomb_png
from scraper.images import ImageError, check_content_type, check_image
from scraper.local_import import import_folder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FASHION = SHARED / "data" / "fashion-small-2k"


def _img(fmt: str = "PNG", colour: tuple[int, int, int] = (10, 120, 200),
         size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "catalog.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", ".png"), ("JPEG", ".jpg"), ("GIF", ".gif"),
                                          ("WEBP", ".webp")])
def test_good_images_get_format_extension_and_sha256(fmt: str, ext: str) -> None:
    data = _img(fmt)
    checked = check_image(data)
    assert checked.ext == ext and (checked.width, checked.height) == (40, 30)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


def test_bad_images_are_refused_with_a_reason() -> None:
    jpeg = _img("JPEG", size=(200, 200))
    with pytest.raises(ImageError, match=r"truncated|corrupt"):
        check_image(jpeg[: len(jpeg) // 2])
    with pytest.raises(ImageError, match="not a decodable image"):
        check_image(b"<html><body>hello</body></html>")
    with pytest.raises(ImageError, match="decompression bomb"):
        check_image(_bomb_png())
    with pytest.raises(ImageError, match="empty"):
        check_image(b"")
    with pytest.raises(ImageError, match="text/html"):
        check_content_type("text/html; charset=utf-8")
    check_content_type("image/jpeg")
    check_content_type("application/octet-stream")


def test_bare_folder_import_dedupes_and_skips_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    (src / "red shoe.png").write_bytes(_img(colour=(200, 0, 0)))
    (src / "blue.jpg").write_bytes(_img("JPEG", colour=(0, 0, 200)))
    (src / "blue-copy.png").write_bytes((src / "red shoe.png").read_bytes())  # same bytes
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (src / "notes.txt").write_text("not an image")
    summary = import_folder(src, tmp_path / "cat", progress=False, say=lambda m: None)
    rows = {r["id"]: r for r in _rows(tmp_path / "cat")}
    assert sorted(rows) == ["blue", "blue-copy", "red-shoe"]
    assert rows["blue"]["image"] == "images/blue.jpg"
    # byte-identical: stored once, under the first id in sorted order, both rows point at it
    assert rows["red-shoe"]["image"] == rows["blue-copy"]["image"] == "images/blue-copy.png"
    assert sorted(p.name for p in (tmp_path / "cat" / "images").iterdir()) == [
        "blue-copy.png", "blue.jpg"]
    assert summary.shared_images == 1 and sum(summary.skipped.values()) == 1
    for row in rows.values():
        data = (tmp_path / "cat" / row["image"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]


def test_metadata_csv_with_explicit_columns(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    (src / "1.png").write_bytes(_img(colour=(1, 2, 3)))
    (src / "2.jpg").write_bytes(_img("JPEG"))
    meta = tmp_path / "meta.csv"
    meta.write_text("sku,name,cost,colour\n1,First,€9,red\n2,Second,10.5,blue\n3,Ghost,1,none\n")
    summary = import_folder(src, tmp_path / "cat", metadata=meta, id_column="sku",
                            title_column="name", price_column="cost", progress=False)
    rows = _rows(tmp_path / "cat")
    assert list(rows[0]) == ["id", "image", "title", "price", "currency", "product_url",
                             "image_url", "sha256", "colour"]
    assert [(r["id"], r["title"], r["price"], r["currency"], r["colour"]) for r in rows] == [
        ("1", "First", "9", "EUR", "red"), ("2", "Second", "10.5", "", "blue")]
    assert summary.skipped == {"no image file named <id>.<ext>": 1}
    with pytest.raises(ScraperError, match="no column 'productDisplayName'"):
        import_folder(src, tmp_path / "x", metadata=meta, id_column="sku",
                      title_column="productDisplayName")


# pandas reads an integer column with a missing value as floats and writes it back so
PANDAS_CSV = ("id,title,year,size,rating,code\n"
              "1,First,2011.0,38.0,4.5,007\n2,Second,,40.0,3.0,012\n3,Third,2012.0,,5.0,\n")


def test_integers_written_as_floats_by_pandas_stay_integers(tmp_path: Path) -> None:
    """`2011.0` in every row of a column is a pandas float upcast: the catalog says 2011.
    Real decimals (4.5) and other text (007) keep the whole column as written."""
    src = tmp_path / "photos"
    src.mkdir()
    for n in (1, 2, 3):
        (src / f"{n}.png").write_bytes(_img(colour=(n, 2, 3)))
    meta = tmp_path / "styles.csv"
    meta.write_text(PANDAS_CSV)
    expected = [("2011", "38", "4.5", "007"), ("", "40", "3.0", "012"), ("2012", "", "5.0", "")]

    import_folder(src, tmp_path / "cat", metadata=meta, progress=False)
    rows = _rows(tmp_path / "cat")
    assert [(r["year"], r["size"], r["rating"], r["code"]) for r in rows] == expected

    # the build reading the same CSV (`pipeline build PHOTOS --metadata CSV`), and the
    # catalog the import wrote
    from pipeline.catalog import read_catalog

    for folder, metadata in ((src, meta), (tmp_path / "cat", None)):
        attrs = [r.attrs for r in read_catalog(folder, metadata)]
        assert [(a["year"], a["size"], a["rating"], a["code"]) for a in attrs] == expected


def test_import_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["import", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "image folder not found" in err


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"shared data not found at {FASHION}")
def test_kaggle_fashion_styles_csv(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "fashion"
    code = main(["import", str(FASHION / "images"), "--metadata", str(FASHION / "styles.csv"),
                 "--id-column", "id", "--title-column", "productDisplayName",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 2000 and len({r["id"] for r in rows}) == 2000
    assert {"articleType", "gender", "baseColour", "year"} <= set(rows[0])
    first = next(r for r in rows if r["id"] == "26960")
    assert first["title"] == "Jealous 21 Women Purple Shirt" and first["articleType"] == "Shirts"
    # the 3 known byte-duplicate pairs share one stored file
    by_id = {r["id"]: r for r in rows}
    for a, b in (("31097", "34037"), ("41986", "40139"), ("8723", "9612")):
        assert by_id[a]["image"] == by_id[b]["image"]
    assert len(list((out / "images").iterdir())) == 1997
    assert "2000 products in catalog" in capsys.readouterr().out
