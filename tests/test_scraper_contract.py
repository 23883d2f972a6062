"""Contract 1 has one owner (pipeline.catalog): the scraper writes what the pipeline reads,
and neither side imports the other's heavy dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.catalog import (
    CORE_COLUMNS,
    ID_PATTERN,
    MAX_ATTRIBUTE_CHARS,
    MAX_TITLE_CHARS,
    read_catalog,
    safe_id,
)
from pipeline.catalog import make_id as catalog_make_id
from scraper.catalog import write_catalog
from scraper.parse import make_id

ROOT = Path(__file__).resolve().parents[1]


def loaded_modules(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of `names` a fresh interpreter has imported after running `code`."""
    check = f"import sys\n{code}\nprint(' '.join(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


def test_scraper_writes_the_columns_the_pipeline_reads(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a-1.jpg").write_bytes(b"not decoded by read_catalog")
    write_catalog(tmp_path, [{"id": "a-1", "image": "images/a-1.jpg", "title": "A",
                              "price": 9.5, "sha256": "0" * 64, "colour": "red"}])
    header = (tmp_path / "catalog.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == [*CORE_COLUMNS, "colour"]
    (row,) = read_catalog(tmp_path)
    assert (row.id, row.title, row.price, row.attrs) == ("a-1", "A", 9.5, {"colour": "red"})


def test_ids_follow_one_rule() -> None:
    assert make_id is catalog_make_id  # the scraper imports the contract's own rule
    for raw in ("SKU 12/34", "..a b..", "ü-42", "x" * 130, "über-商品", "商品"):
        scraped, local = make_id(raw), safe_id(raw)
        assert scraped and ID_PATTERN.match(scraped) and len(scraped) <= 120
        assert scraped == local


def test_bare_folders_get_the_same_distinct_ids(tmp_path: Path) -> None:
    for name in ("über-商品.jpg", "über-品.jpg", "x" * 150 + "1.jpg", "x" * 150 + "2.jpg"):
        (tmp_path / name).write_bytes(b"not decoded by read_catalog")
    ids = [r.id for r in read_catalog(tmp_path)]
    assert len(set(ids)) == 4 and all(ID_PATTERN.match(i) and len(i) <= 120 for i in ids)
    assert sorted(ids) == sorted(catalog_make_id(n.rsplit(".", 1)[0]) for n in (
        "über-商品.jpg", "über-品.jpg", "x" * 150 + "1.jpg", "x" * 150 + "2.jpg"))


def test_long_scraped_fields_give_a_catalog_the_pipeline_reads(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    title = "Very long title " * 20_000  # 320 KB, as a broken shop page gave
    write_catalog(tmp_path, [{"id": "a", "image": "images/a.jpg", "title": title,
                              "notes": "n" * 300_000}])
    (row,) = read_catalog(tmp_path)
    assert len(row.title or "") <= MAX_TITLE_CHARS and row.title.endswith("…")
    assert len(row.attrs["notes"]) <= MAX_ATTRIBUTE_CHARS
    # and a catalog written by another tool with a 300 KB field is read, capped the same
    (tmp_path / "catalog.csv").write_text(f"id,image,title\na,images/a.jpg,{'t' * 300_000}\n",
                                          encoding="utf-8")
    (row,) = read_catalog(tmp_path)
    assert row.title == "t" * (MAX_TITLE_CHARS - 1) + "…"


def test_scraper_imports_no_numpy_and_pipeline_catalog_no_http_stack() -> None:
    heavy = ("numpy", "pandas", "tensorflow", "keras")
    assert loaded_modules("import scraper.cli, scraper.crawl, scraper.local_import", heavy) == []
    scraping = ("requests", "bs4", "PIL", "scraper")
    assert loaded_modules("import pipeline.catalog", scraping) == []
