"""Writing contract 2 (the precomputed folder) atomically and deterministically."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .precomputed import (
    COLOUR_MEAN_FILE,
    COLOURS_FILE,
    EMBEDDINGS_FILE,
    META_FILE,
    NEIGHBOURS_FILE,
    PRODUCTS_FILE,
    SCHEMA_VERSION,
    THUMBS_DIR,
    default_rows,
)
from .shop_index import write_shop_index

if TYPE_CHECKING:
    from .whitening import Whitening

REPORT_FILE = "report.json"
# `.NAME.tmp-PID` (being written) and `.NAME.old-PID` (being replaced) beside a folder
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>[0-9]+)")


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


def precomputed_meta(
    *,
    n_products: int,
    k: int,
    metric: str,
    group_by: str | None,
    model: dict[str, Any],
    similarity_baseline: float,
    source: dict[str, Any],
    thumb_base_url: str | None = None,
    created_at: str | None = None,
    rows: list[dict[str, Any]] | None = None,
    whitening: dict[str, Any] | None = None,
    colour: dict[str, Any] | None = None,
    prefer: dict[str, Any] | None = None,
    projection: str = "pca",
    index: dict[str, Any] | None = None,
    text: dict[str, Any] | None = None,
    department: dict[str, Any] | None = None,
    upload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """meta.json's content (contract 2): the one place that lists its keys.

    `model` is the extractor's identity plus `resize`; `created_at` defaults to now (UTC,
    seconds). `rows` defaults to the one `similar` row of neighbours.json, shape only.
    `index` says how neighbours were found: `{"kind": "exact"}` (default) or the faiss
    index (`pipeline.ann`) that proposed the candidates. `text` describes the words signal
    (`pipeline.text`; null: visual rows only), `department` where departments come from
    (`pipeline.departments`; null: none), `upload` how photo search knows a photo that
    looks like nothing in the catalog (`pipeline.whitening.novelty_threshold`; null: it
    answers every photo).
    """
    if created_at is None:
        created_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": created_at,
        "n_products": n_products,
        "k": k,
        "metric": metric,
        "group_by": group_by,
        "model": model,
        "projection": projection,
        "rows": rows if rows is not None else default_rows(),
        "whitening": whitening,
        "colour": colour,
        "prefer": prefer,
        "index": index or {"kind": "exact"},
        "text": text,
        "department": department,
        "upload": upload,
        "similarity_baseline": similarity_baseline,
        "source": source,
        "thumb_base_url": thumb_base_url,
    }


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


def _link_or_copy(src: Path, dest: Path) -> None:
    # a hard link writes no inode or data: ~30x cheaper than a new file on ext4 here
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def write_thumbs(
    folder: Path,
    products: list[dict[str, Any]],
    thumb_bytes: Callable[[dict[str, Any]], bytes],
    reusable: dict[str, tuple[str, Path]],
) -> None:
    """Write `thumbs/<id>.jpg` of every product into `folder`.

    A thumbnail of the old folder whose product sha256 is unchanged (`reusable`, from
    `old_thumbs`) is hard-linked, and so are bytes already written for another product
    (byte-identical photos); only new bytes become new files.
    """
    first_with: dict[bytes, Path] = {}
    for p in products:
        dest = folder / thumb_file(p["id"])
        old = reusable.get(p["id"])
        if old and old[0] == p["sha256"]:
            _link_or_copy(old[1], dest)
            continue
        data = thumb_bytes(p)
        digest = hashlib.sha256(data).digest()
        if digest in first_with:
            _link_or_copy(first_with[digest], dest)
        else:
            dest.write_bytes(data)
            first_with[digest] = dest


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def stale_temporaries(out: str | Path) -> list[Path]:
    """Temporary siblings of `out` (`.NAME.tmp-PID/`, `.NAME.old-PID/`) left by builds that
    were killed: those whose PID is not a live process on this machine, sorted."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    stale = []
    for entry in out.parent.iterdir():
        m = _TEMPORARY.fullmatch(entry.name)
        if m and m["name"] == out.name and entry.is_dir() and not entry.is_symlink() \
                and not _pid_alive(int(m["pid"])):
            stale.append(entry)
    return sorted(stale)


def remove_stale_temporaries(out: str | Path) -> list[Path]:
    """Delete `stale_temporaries(out)`; return what was removed (a live build's are kept)."""
    removed = []
    for folder in stale_temporaries(out):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under `folder` to disk, so a rename never publishes a
    folder whose files are still only in the page cache (a power cut would leave them
    empty)."""
    for here, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_path(os.path.join(here, name))
        _fsync_path(here)


def write_precomputed(
    out: str | Path,
    meta: dict[str, Any],
    products: list[dict[str, Any]],
    neighbours: dict[str, list[list[Any]]],
    embeddings: np.ndarray | None,
    thumb_bytes: Callable[[dict[str, Any]], bytes] | None,
    report: list[dict[str, Any]],
    other_rows: dict[str, dict[str, list[list[Any]]]] | None = None,
    colours: np.ndarray | None = None,
    whitening: Whitening | None = None,
    colour_mean: np.ndarray | None = None,
) -> Path:
    """Write a precomputed folder to a temporary sibling, flush it, then rename it into place.

    `neighbours` is the `similar` row (neighbours.json); `other_rows` maps the other rows'
    file names to theirs. `colours` (colours.npy, centred), `colour_mean`
    (colour_mean.npy) and `whitening` (whitening.npz) are what dynamic mode needs to give
    an upload the same rows.

    `thumb_bytes(product)` returns the JPEG for a product; thumbnails of an existing
    folder whose product sha256 is unchanged are reused instead of re-made. With
    `thumb_bytes=None` no thumbnail is written (`thumbs/` stays empty), and with
    `embeddings=None` no embeddings.npy (test folders for static serving).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / THUMBS_DIR).mkdir(parents=True)
    reusable = old_thumbs(out) if out.is_dir() else {}
    try:
        if thumb_bytes is not None:
            write_thumbs(tmp, products, thumb_bytes, reusable)
        if embeddings is not None:
            np.save(tmp / EMBEDDINGS_FILE, np.asarray(embeddings, dtype=np.float16))
        if colours is not None:
            np.save(tmp / COLOURS_FILE, np.asarray(colours, dtype=np.float16))
        if colour_mean is not None:
            np.save(tmp / COLOUR_MEAN_FILE, np.asarray(colour_mean, dtype=np.float32))
        if whitening is not None:
            whitening.save(tmp / whitening.meta()["file"])
        dump_json(products, tmp / PRODUCTS_FILE)
        dump_json(neighbours, tmp / NEIGHBOURS_FILE)
        for name, row in (other_rows or {}).items():
            dump_json(row, tmp / name)
        dump_json(report, tmp / REPORT_FILE, indent=1)
        dump_json(meta, tmp / META_FILE, indent=2)  # last: its presence marks a whole folder
        found = {NEIGHBOURS_FILE: neighbours, **(other_rows or {})}
        rows = [(entry, found[entry["file"]]) for entry in meta.get("rows") or default_rows()
                if entry["file"] in found]
        write_shop_index(tmp, products, neighbours, rows=rows)  # the app's index
        fsync_tree(tmp)
        if out.exists():
            old_dir = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old_dir)
            os.replace(tmp, out)
            shutil.rmtree(old_dir, ignore_errors=True)
        else:
            os.replace(tmp, out)
        _fsync_path(os.fspath(out.parent))  # the rename itself
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
