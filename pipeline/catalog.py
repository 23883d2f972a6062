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

import contextlib
import csv
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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
# Text fields are capped: by the scraper when it writes them, by the pipeline when it reads
MAX_TITLE_CHARS = 500
MAX_ATTRIBUTE_CHARS = 1000
CSV_FIELD_LIMIT = 64 * 1024 * 1024  # the csv module's default (131072) refuses long titles
# A CSV line (or a record of several lines) longer than this is refused before it is
# read whole: a 1 GiB line took 2.1 GB of memory to refuse. 4 Mi characters leave room
# for a 300 KB title, which is then capped.
MAX_CSV_LINE_CHARS = 4 * 1024 * 1024
DOT_IDS = (".", "..")  # match ID_PATTERN but name folders, not products
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


class _CappedLines:
    """A text file's lines for `csv.reader`, each record (one line, or several when a
    quoted field holds newlines) at most `limit` characters: a longer one raises
    CatalogError naming the file and the record's first line, having read at most
    `limit` + 1 characters of it."""

    def __init__(self, fh: TextIO, name: str, limit: int) -> None:
        self.fh, self.name, self.limit = fh, name, limit
        self.lines = 0  # physical lines read so far
        self.record_start = 1  # first physical line of the record being read
        self.record_chars = 0

    def __iter__(self) -> _CappedLines:
        return self

    def __next__(self) -> str:
        line = self.fh.readline(self.limit - self.record_chars + 1)
        if not line:
            raise StopIteration
        self.lines += 1
        self.record_chars += len(line)
        if self.record_chars > self.limit:
            raise CatalogError(f"{self.name} line {self.record_start}: longer than "
                               f"{self.limit:,} characters (a CSV line or record's cap)")
        return line

    def next_record(self) -> None:
        """The caller has a whole record: count the next one from the next line."""
        self.record_start, self.record_chars = self.lines + 1, 0


@contextlib.contextmanager
def csv_records(path: Path, limit: int = MAX_CSV_LINE_CHARS
                ) -> Iterator[tuple[list[str], Iterator[tuple[int, dict[str, str]]]]]:
    """Open a UTF-8 CSV: its header and its records, streamed as (first line number,
    record), while the `with` block runs.

    Nothing longer than `limit` characters is read into memory: a longer line or record
    raises CatalogError with the file name and line number, and so do undecodable bytes,
    malformed CSV and a file without a header row (one line each).
    """
    allow_long_csv_fields()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        lines = _CappedLines(fh, path.name, limit)
        reader = csv.DictReader(lines)

        def step() -> dict[str, str] | None:
            try:
                return next(reader)
            except StopIteration:
                return None
            except UnicodeDecodeError as e:
                raise CatalogError(f"{path}: not UTF-8 ({e.reason} near line "
                                   f"{lines.lines + 1})") from None
            except csv.Error as e:
                raise CatalogError(f"{path}: malformed CSV at line {lines.lines} ({e})"
                                   ) from None

        def records() -> Iterator[tuple[int, dict[str, str]]]:
            while (record := step()) is not None:
                yield lines.record_start, record
                lines.next_record()

        try:
            header = list(reader.fieldnames or [])
        except UnicodeDecodeError as e:
            raise CatalogError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
        except csv.Error as e:
            raise CatalogError(f"{path}: malformed CSV at line 1 ({e})") from None
        if not header:
            raise CatalogError(f"{path}: empty file (no header row)")
        lines.next_record()
        yield header, records()


class FloatUpcast:
    """Finds, as records stream by, the integer columns that pandas wrote as floats
    ("2011.0"), then writes their values back as integers ("2011").

    pandas reads an integer column with a missing value as floats and writes it back as
    `2011.0`: Kaggle's fashion `styles.csv` has `year` so. A column is changed only when
    every one of its non-empty values is an integer followed by `.0`; one other value
    (`4.5`, `n/a`) leaves the whole column as written.
    """

    def __init__(self, columns: list[str]) -> None:
        self.candidates = dict.fromkeys(columns, False)  # column -> a value seen

    def see(self, record: dict[str, str]) -> None:
        """Look at one record's values (every record of the file, kept or not)."""
        for col in list(self.candidates):
            v = record.get(col)
            if isinstance(v, str) and v.strip():
                if FLOAT_INTEGER.fullmatch(v.strip()):
                    self.candidates[col] = True
                else:
                    del self.candidates[col]

    def undo(self, rows: list[dict[str, str]]) -> None:
        """The upcast columns of `rows`, back to integers, in place."""
        for col, seen in self.candidates.items():
            if not seen:
                continue
            for r in rows:
                v = r.get(col)
                if isinstance(v, str) and v.strip():
                    r[col] = v.strip()[:-2]


def undo_float_upcast(rows: list[dict[str, str]], columns: list[str]) -> None:
    """Integer columns that pandas wrote as floats ("2011.0"), back to "2011", in place
    (:class:`FloatUpcast` over all of `rows`)."""
    upcast = FloatUpcast(columns)
    for r in rows:
        upcast.see(r)
    upcast.undo(rows)


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


def _csv_rows(
    csv_path: Path,
    base: Path,
    id_column: str,
    image_column: str | None,
    title_column: str | None,
    check_ids: bool,
) -> list[CatalogRow]:
    with csv_records(csv_path) as (header, records):
        return _rows_of_records(csv_path, header, records, base, id_column, image_column,
                                title_column, check_ids)


def _rows_of_records(
    csv_path: Path,
    header: list[str],
    records: Iterator[tuple[int, dict[str, str]]],
    base: Path,
    id_column: str,
    image_column: str | None,
    title_column: str | None,
    check_ids: bool,
) -> list[CatalogRow]:
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
    title_key = title_column or "title"
    rows: list[CatalogRow] = []
    first_line: dict[str, int] = {}
    for line, rec in records:
        where = f"{csv_path.name} line {line}"
        raw_id = (rec.get(id_column) or "").strip()
        if not raw_id:
            raise CatalogError(f"{where}: empty id")
        if raw_id in DOT_IDS:
            raise CatalogError(f"{where}: id {raw_id!r} is not a product id ('.' and '..' "
                               "name folders)")
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
        title = (rec.get(title_key) or "").strip()
        rows.append(
            CatalogRow(
                id=pid,
                image=image,
                title=clip_text(title, MAX_TITLE_CHARS) or None,
                price=_parse_price(rec.get("price"), where),
                currency=(rec.get("currency") or "").strip() or None,
                product_url=(rec.get("product_url") or "").strip() or None,
                image_url=(rec.get("image_url") or "").strip() or None,
                attrs={c: clip_text((rec.get(c) or "").strip(), MAX_ATTRIBUTE_CHARS)
                       for c in attr_columns},
            )
        )
    undo_float_upcast([r.attrs for r in rows], attr_columns)
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
