"""``python -m scraper import``: a catalog folder from photos already on disk.

Without metadata every image file in the folder (top level) is a product, id = file
stem. With ``--metadata CSV`` every CSV row is a product: the id column is explicit
(default ``id``), its image is ``--image-column`` (a path relative to the image folder)
or else the one file whose stem is the id; title/price/currency come from the named
columns (or columns already called ``title``/``price``/...); every other column becomes an
attribute. Images get the crawler's validation, sha256 and dedupe.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.catalog import CORE_COLUMNS, CatalogError, FloatUpcast, csv_records, make_id
from scraper import ScraperError
from scraper.catalog import write_catalog
from scraper.images import ImageError, check_image, store_image
from scraper.lock import FolderLock
from scraper.parse import parse_price

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class ImportSummary:
    """What an import did."""

    out: Path
    rows: int = 0
    images_saved: int = 0
    shared_images: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        """Count one skipped product."""
        self.skipped[reason] += 1
        self.examples.setdefault(reason, example)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        n_skipped = sum(self.skipped.values())
        out = [f"import: {self.rows} products in catalog, {self.images_saved} images stored"
               + (f" ({self.shared_images} rows share a byte-identical image)"
                  if self.shared_images else "") + f", {n_skipped} skipped"]
        for reason, n in self.skipped.most_common():
            out.append(f"  skipped {n}: {reason}  (e.g. {self.examples[reason]})")
        out.append(f"catalog: {self.out / 'catalog.csv'} ({self.rows} rows)")
        return out


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _need_column(columns: list[str], name: str | None, option: str, path: Path) -> None:
    if name is not None and name not in columns:
        raise ScraperError(f"{path} has no column '{name}' ({option}); columns: "
                           f"{', '.join(columns)}")


def _metadata_products(
    meta_path: Path, columns: list[str], records: Iterator[tuple[int, dict[str, str]]],
    images: Path, by_stem: dict[str, list[Path]], summary: ImportSummary, id_column: str,
    title_column: str | None, image_column: str | None, price_column: str | None,
    currency_column: str | None,
) -> list[tuple[str, Path, dict[str, str], dict[str, str]]]:
    """The products of a metadata CSV's records, read one at a time: a row without a
    usable id or image file is counted in `summary` and not kept."""
    for name, option in ((id_column, "--id-column"), (title_column, "--title-column"),
                         (image_column, "--image-column"), (price_column, "--price-column"),
                         (currency_column, "--currency-column")):
        _need_column(columns, name, option, meta_path)
    mapped = {id_column: "id"}
    for col, core in ((title_column, "title"), (price_column, "price"),
                      (currency_column, "currency")):
        if col:
            mapped[col] = core
    if image_column:
        mapped[image_column] = "image"
    upcast = FloatUpcast([c for c in columns if mapped.get(c, c) not in CORE_COLUMNS])
    products = []
    for n, row in records:
        upcast.see(row)  # every row decides, also those skipped
        raw_id = (row.get(id_column) or "").strip()
        pid = make_id(raw_id)
        if pid is None:
            summary.skip(f"empty or unusable {id_column!r}", f"{meta_path.name} line {n}")
            continue
        if image_column:
            rel = (row.get(image_column) or "").strip()
            source: Path | str = images / rel if rel else "no image path in the row"
        else:
            matches = by_stem.get(raw_id, [])
            source = (matches[0] if len(matches) == 1 else
                      "no image file named <id>.<ext>" if not matches else
                      "several image files named <id>.*")
        if isinstance(source, str):
            summary.skip(source, pid)
            continue
        core, attrs = {}, {}
        for col, value in row.items():
            if col is None:
                continue
            target = mapped.get(col, col)
            if target in ("id", "image", "sha256"):
                continue
            if target in CORE_COLUMNS:
                core[target] = value or ""
            else:
                attrs[col] = value or ""
        if "price" in core:
            price, currency = parse_price(core["price"])
            core["price"] = price or ""
            if currency and not core.get("currency"):
                core["currency"] = currency
        products.append((pid, source, core, attrs))
    upcast.undo([attrs for _, _, _, attrs in products])
    return products


def import_folder(images: str | Path, out: str | Path, **options) -> ImportSummary:
    """Validate the photos in ``images`` and write the catalog folder ``out`` (options as
    :func:`_import_folder`), holding the folder's lock: one writer at a time."""
    if not Path(images).is_dir():
        raise ScraperError(f"image folder not found: {images}")
    lock = FolderLock(Path(out), "import")
    try:
        return _import_folder(images, out, **options)
    finally:
        lock.release()


def _import_folder(images: str | Path, out: str | Path, metadata: str | Path | None = None,
                  id_column: str = "id", title_column: str | None = None,
                  image_column: str | None = None, price_column: str | None = None,
                  currency_column: str | None = None, progress: bool | None = None,
                  say: Callable[[str], None] | None = None) -> ImportSummary:
    """Validate the photos in ``images`` and write the catalog folder ``out``."""
    images, out = Path(images), Path(out)
    if not images.is_dir():
        raise ScraperError(f"image folder not found: {images}")
    if say is None:
        def say(message: str) -> None:
            tqdm.write(message, file=sys.stderr)
    files = _image_files(images)
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)

    # (id, image path, core values, attributes) per product
    products: list[tuple[str, Path, dict[str, str], dict[str, str]]] = []
    summary = ImportSummary(out)
    if metadata is None:
        if not files:
            raise ScraperError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                               f"in {images}")
        for p in files:
            pid = make_id(p.stem)
            if pid is None:
                summary.skip("file name gives no usable id", p.name)
                continue
            products.append((pid, p, {}, {}))
    else:
        meta_path = Path(metadata)
        try:
            with csv_records(meta_path) as (columns, records):
                products = _metadata_products(
                    meta_path, columns, records, images, by_stem, summary, id_column,
                    title_column, image_column, price_column, currency_column)
        except OSError as exc:
            raise ScraperError(f"cannot read metadata {meta_path}: {exc}") from None
        except CatalogError as exc:  # names the file (and the line)
            raise ScraperError(f"cannot read metadata: {exc}") from None

    products.sort(key=lambda t: t[0])
    stored: dict[str, str] = {}
    seen_ids: set[str] = set()
    rows_out = []
    for pid, source, core, attrs in tqdm(products, desc="import", unit="image",
                                         disable=None if progress is None else not progress):
        if pid in seen_ids:
            summary.skip("duplicate id", pid)
            continue
        try:
            data = source.read_bytes()
            image = check_image(data)
        except OSError as exc:
            summary.skip(f"cannot read image: {exc.strerror or exc}", str(source))
            say(f"skipped: {source}: cannot read: {exc}")
            continue
        except ImageError as exc:
            summary.skip(str(exc), str(source))
            say(f"skipped: {source}: {exc}")
            continue
        seen_ids.add(pid)
        existing = stored.get(image.sha256)
        rel = store_image(out, pid, image, existing)
        if existing:
            summary.shared_images += 1
        else:
            summary.images_saved += 1
            stored[image.sha256] = rel
        rows_out.append({"id": pid, "image": rel, **core, "sha256": image.sha256, **attrs})
    if not rows_out:
        raise ScraperError(f"no usable images in {images}; nothing written")
    write_catalog(out, rows_out)
    summary.rows = len(rows_out)
    return summary
