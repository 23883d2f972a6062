"""Reading contract 1 (the catalog folder) into product rows; owner of its names and rules.

Three inputs are accepted, never guessed between silently:
- a catalog folder with `catalog.csv` (columns per docs/architecture.md);
- a bare folder of images (or a folder with only `images/`): ids from file names;
- an images folder plus `--metadata CSV` with explicit column options (Kaggle's
  `styles.csv`: `--id-column id --title-column productDisplayName`).

Contract 1's file name, core columns, id rule (`make_id`) and text caps are defined
here and nowhere else; the scraper, which writes the contract, imports them. Only the
standard library is imported, so the scraper does not pull in numpy or TensorFlow.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jfif"}
)
CATALOG_FILE = "catalog.csv"
# catalog.csv's named columns, in the order the scraper writes them; any other column is
# a product attribute
CORE_COLUMNS = (
    "id", "image", "title", "price", "currency", "product_url", "image_url", "sha256",
)
ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")  # a filesystem-safe id
ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")  # runs of characters an id may not contain
ID_MAX_CHARS = 120  # longer ids are cut and given a hash suffix, so they stay distinct
# Letters NFKD does not decompose into ASCII; everything else non-ASCII that does not
# decompose is dropped and the id gets a hash suffix instead
_TRANSLITERATE = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O",
                                "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th",
                                "Þ": "Th", "œ": "oe", "Œ": "OE", "ı": "i"})
# Text fields the scraper writes are capped (the pipeline reads longer ones too)
MAX_TITLE_CHARS = 500
MAX_ATTRIBUTE_CHARS = 1000
CSV_FIELD_LIMIT = 64 * 1024 * 1024  # the csv module's default (131072) refuses long titles
FLOAT_INTEGER = re.compile(r"[+-]?[0-9]+\.0")  # how pandas writes an integer it made a float


class CatalogError(ValueError):
    """The catalog input is invalid as a whole (missing folder, bad CSV, duplicate ids)."""


@dataclass
class CatalogRow:
    """One product of a catalog; `image` is an absolute path."""

    id: str
    image: Path
    title: str | None = None
    price: float | None = None
    currency: str | None = None
    product_url: str | None = None
    image_url: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def make_id(raw: object) -> str | None:
    """Contract 1's id rule: a filesystem-safe id (`[A-Za-z0-9._-]+`, at most 120
    characters) from a shop id, URL slug or file name; None when nothing usable is left.

    Accented letters are transliterated (`über` -> `uber`); characters that have no ASCII
    form (`商品`) are dropped and a short hash of the original text is appended, so
    `über-商品` and `über-品` stay distinct; an id over 120 characters is cut and given the
    same kind of suffix; `.` and `..` are never ids.
    """
    if raw is None:
        return None
    text = unicodedata.normalize("NFC", str(raw).strip())
    if not text:
        return None
    folded = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = "".join(c for c in folded if c.isascii())
    lost = any(not c.isascii() and not unicodedata.combining(c) for c in folded)
    cleaned = ID_UNSAFE.sub("-", ascii_text).strip("-.")
    if lost:
        cleaned = f"{cleaned}-{_short_hash(text)}".strip("-")
    if len(cleaned) > ID_MAX_CHARS:
        cleaned = f"{cleaned[:ID_MAX_CHARS - 9].rstrip('-.')}-{_short_hash(text)}"
    return cleaned or None


def safe_id(text: str) -> str:
    """A filesystem-safe id from a file name or shop id (:func:`make_id`, else `item`)."""
    return make_id(text) or "item"


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary when one is near,
    ending in an ellipsis; shorter text unchanged."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    if space > limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip() + "…"


def allow_long_csv_fields() -> None:
    """Let the csv module read fields up to 64 MiB (its default limit is 128 KiB)."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def undo_float_upcast(rows: list[dict[str, str]], columns: list[str]) -> None:
    """Integer columns that pandas wrote as floats ("2011.0"), back to "2011", in place.

    pandas reads an integer column with a missing value as floats and writes it back as
    `2011.0`: Kaggle's fashion `styles.csv` has `year` so. A column is changed only when
    every one of its non-empty values is an integer followed by `.0`; one other value
    (`4.5`, `n/a`) leaves the whole column as written.
    """
    for col in columns:
        present = [v for r in rows if isinstance(v := r.get(col), str) and v.strip()]
        if present and all(FLOAT_INTEGER.fullmatch(v.strip()) for v in present):
            for r in rows:
                v = r.get(col)
                if isinstance(v, str) and v.strip():
                    r[col] = v.strip()[:-2]


def _parse_price(value: str | None, where: str) -> float | None:
    if value is None or not value.strip():
        return None
    text = value.strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        raise CatalogError(f"{where}: price {value!r} is not a decimal number") from None


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _bare_folder_rows(folder: Path) -> list[CatalogRow]:
    rows: list[CatalogRow] = []
    seen: dict[str, Path] = {}
    for path in _image_files(folder):
        rel = path.relative_to(folder).with_suffix("")
        pid = safe_id("-".join(rel.parts))
        if pid in seen:
            raise CatalogError(
                f"{path}: id {pid!r} clashes with {seen[pid]} (same file name, other extension)"
            )
        seen[pid] = path
        rows.append(CatalogRow(id=pid, image=path))
    return rows


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    allow_long_csv_fields()
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise CatalogError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise CatalogError(f"{path}: malformed CSV ({e})") from None
    if not header:
        raise CatalogError(f"{path}: empty file (no header row)")
    return header, rows


def _csv_rows(
    csv_path: Path,
    base: Path,
    id_column: str,
    image_column: str | None,
    title_column: str | None,
    check_ids: bool,
) -> list[CatalogRow]:
    header, records = _read_csv(csv_path)
    if id_column not in header:
        raise CatalogError(
            f"{csv_path}: no id column {id_column!r} (columns: {', '.join(header)}); "
            "pass --id-column NAME"
        )
    for opt, col in (("--image-column", image_column), ("--title-column", title_column)):
        if col and col not in header:
            raise CatalogError(f"{csv_path}: {opt} {col!r} not in columns {', '.join(header)}")
    by_stem: dict[str, Path] = {}
    if image_column is None:  # metadata CSV without image paths: match files by id
        for p in _image_files(base):
            by_stem.setdefault(p.stem, p)
    taken = {id_column, image_column, title_column, *CORE_COLUMNS}
    attr_columns = [c for c in header if c and c not in taken]
    undo_float_upcast(records, attr_columns)
    rows: list[CatalogRow] = []
    first_line: dict[str, int] = {}
    for line, rec in enumerate(records, start=2):
        where = f"{csv_path.name} line {line}"
        raw_id = (rec.get(id_column) or "").strip()
        if not raw_id:
            raise CatalogError(f"{where}: empty id")
        if check_ids and not ID_PATTERN.match(raw_id):
            raise CatalogError(f"{where}: id {raw_id!r} is not filesystem-safe ([A-Za-z0-9._-]+)")
        pid = raw_id if ID_PATTERN.match(raw_id) else safe_id(raw_id)
        if pid in first_line:
            raise CatalogError(f"{where}: duplicate id {pid!r} (first on line {first_line[pid]})")
        first_line[pid] = line
        if image_column:
            rel = (rec.get(image_column) or "").strip()
            image = (base / rel) if rel else base / f"{pid}.missing"
        else:
            image = by_stem.get(raw_id, base / f"{raw_id}.jpg")
        title_key = title_column or "title"
        rows.append(
            CatalogRow(
                id=pid,
                image=image,
                title=(rec.get(title_key) or "").strip() or None,
                price=_parse_price(rec.get("price"), where),
                currency=(rec.get("currency") or "").strip() or None,
                product_url=(rec.get("product_url") or "").strip() or None,
                image_url=(rec.get("image_url") or "").strip() or None,
                attrs={c: (rec.get(c) or "").strip() for c in attr_columns},
            )
        )
    return rows


def read_catalog(
    folder: str | Path,
    metadata: str | Path | None = None,
    id_column: str = "id",
    image_column: str | None = None,
    title_column: str | None = None,
) -> list[CatalogRow]:
    """Read a catalog (contract 1), a bare image folder, or images + metadata CSV.

    Rows come back sorted by id. Raises CatalogError for an invalid input as a whole;
    a row whose image file is missing or broken is kept here and skipped by the build.
    """
    folder = Path(folder)
    if not folder.exists():
        raise CatalogError(f"{folder}: catalog folder not found")
    if not folder.is_dir():
        raise CatalogError(f"{folder}: not a folder")
    if metadata is not None:
        meta_path = Path(metadata)
        if not meta_path.is_file():
            raise CatalogError(f"{meta_path}: metadata CSV not found")
        rows = _csv_rows(meta_path, folder, id_column, image_column, title_column, check_ids=False)
    elif (folder / CATALOG_FILE).is_file():
        rows = _csv_rows(
            folder / CATALOG_FILE, folder, id_column, image_column or "image",
            title_column, check_ids=True,
        )
    else:
        images = folder / "images"
        rows = _bare_folder_rows(images if images.is_dir() else folder)
    if not rows:
        raise CatalogError(f"{folder}: empty catalog (no products or images found)")
    return sorted(rows, key=lambda r: r.id)
