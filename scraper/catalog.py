"""Writing contract 1's ``catalog.csv``: fixed core columns, then attributes, sorted by id,
titles and attributes capped to the contract's lengths, written to a temporary file and
renamed into place."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.catalog import (  # contract 1's owner (stdlib only)
    CATALOG_FILE,
    CORE_COLUMNS,
    MAX_ATTRIBUTE_CHARS,
    MAX_TITLE_CHARS,
    clip_text,
)
from scraper.images import write_atomic


def catalog_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Core columns, then every other key seen, sorted."""
    extra = sorted({k for row in rows for k in row} - set(CORE_COLUMNS))
    return [*CORE_COLUMNS, *extra]


def capped_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its title and attribute values clipped to contract 1's caps."""
    out = dict(row)
    for key, value in row.items():
        if isinstance(value, str) and (key == "title" or key not in CORE_COLUMNS):
            out[key] = clip_text(value, MAX_TITLE_CHARS if key == "title"
                                 else MAX_ATTRIBUTE_CHARS)
    return out


def write_catalog(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Atomically (re)write ``folder/catalog.csv`` with ``rows`` sorted by id."""
    rows = sorted((capped_row(r) for r in rows), key=lambda r: str(r["id"]))
    columns = catalog_columns(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    path = folder / CATALOG_FILE
    write_atomic(path, buf.getvalue().encode("utf-8"))
    return path
