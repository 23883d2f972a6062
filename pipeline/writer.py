"""Writing contract 2 (the precomputed folder) atomically and deterministically."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .precomputed import (
    EMBEDDINGS_FILE,
    META_FILE,
    NEIGHBOURS_FILE,
    PRODUCTS_FILE,
    THUMBS_DIR,
)

REPORT_FILE = "report.json"


def thumb_file(product_id: str) -> str:
    """Where a product's thumbnail is written in the folder: `thumbs/<id>.jpg`.

    Always there, also when products.json's `thumb` is an absolute URL (thumbnails
    uploaded to a CDN from this folder).
    """
    return f"{THUMBS_DIR}/{product_id}.jpg"


def thumb_ref(product_id: str, base_url: str | None = None) -> str:
    """products.json's `thumb`: `thumbs/<id>.jpg`, or `<base_url><id>.jpg` when hosted elsewhere.

    `base_url` ends with exactly one slash (`build.thumb_base_url` makes it so).
    """
    return f"{base_url}{product_id}.jpg" if base_url else thumb_file(product_id)


def dump_json(obj: Any, path: Path, indent: int | None = None) -> None:
    """Write JSON deterministically (sorted keys, UTF-8, trailing newline)."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=indent, separators=separators)
    path.write_text(text + "\n", encoding="utf-8")


def old_thumbs(out: Path) -> dict[str, tuple[str, Path]]:
    """{id: (sha256, thumb path)} of an existing precomputed folder, to reuse unchanged thumbs."""
    try:
        products = json.loads((out / PRODUCTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for p in products if isinstance(products, list) else []:
        if isinstance(p, dict) and p.get("sha256") and p.get("id"):
            path = out / thumb_file(p["id"])
            if path.is_file():
                found[p["id"]] = (p["sha256"], path)
    return found


def write_precomputed(
    out: str | Path,
    meta: dict[str, Any],
    products: list[dict[str, Any]],
    neighbours: dict[str, list[list[Any]]],
    embeddings: np.ndarray,
    thumb_bytes: Callable[[dict[str, Any]], bytes],
    report: list[dict[str, Any]],
) -> Path:
    """Write a precomputed folder to a temporary sibling, then rename it into place.

    `thumb_bytes(product)` returns the JPEG for a product; thumbnails of an existing
    folder whose product sha256 is unchanged are copied instead of re-made.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / THUMBS_DIR).mkdir(parents=True)
    reusable = old_thumbs(out) if out.is_dir() else {}
    try:
        for p in products:
            dest = tmp / thumb_file(p["id"])
            old = reusable.get(p["id"])
            if old and old[0] == p["sha256"]:
                shutil.copyfile(old[1], dest)
            else:
                dest.write_bytes(thumb_bytes(p))
        np.save(tmp / EMBEDDINGS_FILE, np.asarray(embeddings, dtype=np.float16))
        dump_json(products, tmp / PRODUCTS_FILE)
        dump_json(neighbours, tmp / NEIGHBOURS_FILE)
        dump_json(report, tmp / REPORT_FILE, indent=1)
        dump_json(meta, tmp / META_FILE, indent=2)  # last: its presence marks a whole folder
        if out.exists():
            old_dir = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old_dir)
            os.replace(tmp, out)
            shutil.rmtree(old_dir, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
