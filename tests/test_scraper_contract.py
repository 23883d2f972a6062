"""Contract 1 has one owner (pipeline.catalog): the scraper writes what the pipeline reads,
and neither side imports the other's heavy dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.catalog import CORE_COLUMNS, ID_PATTERN, read_catalog, safe_id
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
    for raw in ("SKU 12/34", "..a b..", "ü-42", "x" * 130):
        scraped, local = make_id(raw), safe_id(raw)
        assert scraped and ID_PATTERN.match(scraped) and ID_PATTERN.match(local)
        assert scraped == local[:120].strip("-.")


def test_scraper_imports_no_numpy_and_pipeline_catalog_no_http_stack() -> None:
    heavy = ("numpy", "pandas", "tensorflow", "keras")
    assert loaded_modules("import scraper.cli, scraper.crawl, scraper.local_import", heavy) == []
    scraping = ("requests", "bs4", "PIL", "scraper")
    assert loaded_modules("import pipeline.catalog", scraping) == []
