"""Writing contract 1's ``catalog.csv``: fixed core columns, then attributes, sorted by id,
written to a temporary file and renamed into place."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.catalog import CATALOG_FILE, CORE_COLUMNS  # contract 1's owner (stdlib only)
from scraper.images import write_atomic


def catalog_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Core columns, then every other key seen, sorted."""
    extra = sorted({k for row in rows for k in row} - set(CORE_COLUMNS))
    return [*CORE_COLUMNS, *extra]


def write_catalog(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Atomically (re)write ``folder/catalog.csv`` with ``rows`` sorted by id."""
    rows = sorted(rows, key=lambda r: str(r["id"]))
    columns = catalog_columns(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    path = folder / CATALOG_FILE
    write_atomic(path, buf.getvalue().encode("utf-8"))
    return path
