"""`shop.sqlite`: the shop front's index of a precomputed folder (contract 2, stdlib only).

The JSON files stay the contract's source of truth; this file holds the same products and
neighbours in a form a web worker can query without loading them: one row per product
(neighbours resolved to row numbers), value -> rows tables for filterable attributes, an
FTS5 word index for search and precomputed sort ranks. A 300,000-product shop then
starts in well under a second and a worker holds only SQLite's page cache, not the
catalog. `pipeline.writer` writes it with every build; the app derives it (once, in a
child process) for folders written before it existed.

    python -m pipeline.shop_index FOLDER [--out FILE]     # (re)derive from the JSON files
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .precomputed import (
    META_FILE,
    NEIGHBOURS_FILE,
    PRODUCTS_FILE,
    THUMBS_DIR,
    PrecomputedError,
    default_rows,
    read_precomputed,
)

INDEX_FILE = "shop.sqlite"
INDEX_VERSION = 5
# Attributes with more distinct values than this get no value -> rows table (ids, titles).
MAX_INDEXED_VALUES = 1000
# A search form (word or prefix) that starts a word of at least this share of the
# products, and of at least DENSE_MIN_ROWS, gets its row sets stored (`search_sets`)
DENSE_FRACTION = 64
DENSE_MIN_ROWS = 2000
# Row set kinds: a form is a whole word (w) or starts a word (p) of the title (t) or of
# the title or attributes (a)
SET_KINDS = ("tw", "tp", "aw", "ap")
MAX_SET_FORM_CHARS = 32  # longer forms get no stored sets (FTS5 expands them)
_TAG_MARK = "\ue000"  # private use: no search word starts with it (see `tag`)
TOKENIZER = "unicode61 remove_diacritics 2"
_JOINERS = re.compile(r"['’\-‐]")
# A compound starts only where a word starts and its runs of letters are possessive, so
# a long word is scanned once: without both, every position of a 40,000-letter word
# backtracked over the rest of it (23.5 s).
_COMPOUND = re.compile(r"(?<![^\W_])[^\W_]++(?:['’\-‐][^\W_]++)+")
_WORD = re.compile(r"[^\W_]+")

SCHEMA = f"""
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE products (
    row INTEGER PRIMARY KEY,        -- position in products.json (sorted by id)
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    price REAL, currency TEXT, product_url TEXT,
    thumb TEXT,                     -- relative path of an existing file, an absolute URL, or NULL
    attrs TEXT NOT NULL,            -- JSON object, values as strings
    x REAL, y REAL,
    neighbours TEXT NOT NULL,       -- JSON [[row, score], ...], best first
    price_asc INTEGER NOT NULL, price_desc INTEGER NOT NULL, title_rank INTEGER NOT NULL
);
CREATE INDEX products_price_asc ON products (price_asc);
CREATE INDEX products_price_desc ON products (price_desc);
CREATE INDEX products_title_rank ON products (title_rank);
-- The folder's recommendation rows (meta.json `rows`, in order): the first row's
-- neighbours are products.neighbours, the others' are in row_neighbours.
CREATE TABLE rec_rows (
    position INTEGER PRIMARY KEY, key TEXT NOT NULL, title TEXT NOT NULL,
    quantiles TEXT NOT NULL         -- JSON: the row's score_quantiles ([] when not calibrated)
);
CREATE TABLE row_neighbours (
    row INTEGER NOT NULL, position INTEGER NOT NULL, neighbours TEXT NOT NULL,
    PRIMARY KEY (row, position)
) WITHOUT ROWID;
CREATE TABLE attr_values (
    value_id INTEGER PRIMARY KEY, name TEXT NOT NULL, value TEXT NOT NULL, count INTEGER NOT NULL,
    UNIQUE (name, value)
);
CREATE TABLE attr_stats (
    name TEXT PRIMARY KEY, position INTEGER NOT NULL, n_values INTEGER NOT NULL,
    covered INTEGER NOT NULL, indexed INTEGER NOT NULL
);
-- Words of the title and attribute values, and one tag per indexed attribute value
-- (`t<value_id>`), so search and filters are a single MATCH on a narrow index.
CREATE VIRTUAL TABLE search USING fts5 (
    title, attrs, tags, content='', columnsize=0, detail=column, tokenize='{TOKENIZER}'
);
-- The row sets of every form (a token, or the start of one) that starts a word of
-- many products (info `dense_rows`), by kind (SET_KINDS; a kind missing for a form
-- stored here is empty): a search reads them instead of expanding the form in FTS5.
CREATE TABLE search_sets (
    form TEXT NOT NULL, kind TEXT NOT NULL, bits_id INTEGER NOT NULL,
    PRIMARY KEY (form, kind)
) WITHOUT ROWID;
CREATE TABLE search_bits (
    bits_id INTEGER PRIMARY KEY, n INTEGER NOT NULL,
    bits BLOB NOT NULL              -- zlib of the bitset, little-endian: bit r = row r
);
"""


def searchable_text(text: str) -> str:
    """Text as the search index holds it: itself, every hyphenated or apostrophed word
    written as one ("Red T-shirt" also has "tshirt", so "t-shirt", "t shirt" and
    "tshirt" all find it), and the singular of plural words ("tops" also has "top", so
    a search for "top" finds it as a whole word)."""
    joined = [_JOINERS.sub("", m).casefold() for m in _COMPOUND.findall(text)]
    words = _WORD.findall(text.casefold()) + joined
    extra = joined + [one for w in words if (one := singular(w)) != w]
    return " ".join([text, *dict.fromkeys(extra)]) if extra else text


def search_words(text: str) -> list[str]:
    """The words of a search, lowercase, compounds joined ("T-shirt" -> "tshirt")."""
    folded = _COMPOUND.sub(lambda m: _JOINERS.sub("", m.group()), text.casefold())
    return _WORD.findall(folded)


def singular(word: str) -> str:
    """A simple English singular: "sneakers" -> "sneaker", "womens" -> "women",
    "dresses" -> "dress", "accessories" -> "accessory"; other words unchanged."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def source_files(folder: Path, meta: bytes) -> list[str]:
    """The JSON files an index is derived from: products.json, neighbours.json and the
    further rows' files that meta.json names (plain file names only)."""
    names = [PRODUCTS_FILE, NEIGHBOURS_FILE]
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        for entry in json.loads(meta).get("rows") or []:
            name = entry.get("file")
            if (isinstance(name, str) and name.endswith(".json") and name not in names
                    and not name.startswith(".") and "/" not in name and "\\" not in name):
                names.append(name)
    return names


def source_signature(folder: Path) -> dict[str, Any]:
    """What the index was derived from: meta.json's text, the sizes of products.json and
    neighbours.json (None for a file that is not there) and, when both are there, the
    sha256 of every source file (:func:`source_files`), so an index whose sources were
    edited, or one made from other files of the same sizes, is never taken as current."""
    meta = (folder / META_FILE).read_bytes()
    sizes = [(folder / name).stat().st_size if (folder / name).is_file() else None
             for name in (PRODUCTS_FILE, NEIGHBOURS_FILE)]
    signature: dict[str, Any] = {"meta": meta.decode("utf-8", "replace"), "sizes": sizes}
    if None not in sizes:
        sums = {}
        for name in source_files(folder, meta):
            with contextlib.suppress(FileNotFoundError), (folder / name).open("rb") as f:
                sums[name] = hashlib.file_digest(f, "sha256").hexdigest()
        signature["sha256"] = sums
    return signature


class _ThumbFinder:
    """Which products' thumbnails exist: one directory listing, not a stat per product."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self.listed = {e.name for e in os.scandir(folder / THUMBS_DIR) if e.is_file()}
        except OSError:
            self.listed = set()

    def __call__(self, product: Mapping[str, Any]) -> str | None:
        """The product's thumb if it is an absolute URL or an existing file inside the
        folder, else None (a path that leaves the folder is never served)."""
        thumb = product.get("thumb") or f"{THUMBS_DIR}/{product['id']}.jpg"
        if thumb.startswith(("https://", "http://")):
            return thumb
        parts = thumb.split("/")
        if thumb.startswith("/") or "\\" in thumb or any(p in ("", ".", "..") for p in parts):
            return None
        if len(parts) == 2 and parts[0] == THUMBS_DIR:
            return thumb if parts[1] in self.listed else None
        return thumb if (self.folder / thumb).is_file() else None


def _ranks(keys: Sequence[Any]) -> list[int]:
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ranks = [0] * len(keys)
    for rank, row in enumerate(order):
        ranks[row] = rank
    return ranks


def write_shop_index(
    folder: str | Path,
    products: Sequence[Mapping[str, Any]],
    neighbours: Mapping[str, Sequence[Sequence[Any]]],
    out: str | Path | None = None,
    rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Sequence[Sequence[Any]]]]]
    | None = None,
) -> Path:
    """Write the index of validated products/neighbours to `out` (default FOLDER/shop.sqlite).

    `rows` are the folder's recommendation rows as (meta.json `rows` entry, neighbours),
    the first being `neighbours`; default: the one uncalibrated `similar` row. Written to
    a temporary file and renamed into place. `folder` is where thumbnails are looked up
    (and where the signature of the JSON files is read).
    """
    if not rows:
        rows = [(default_rows()[0], neighbours)]
    folder = Path(folder)
    out = Path(out) if out is not None else folder / INDEX_FILE
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    row_of = {str(p["id"]): i for i, p in enumerate(products)}
    attrs_of = [{str(k): "" if v is None else str(v) for k, v in (p.get("attrs") or {}).items()}
                for p in products]
    prices = [p.get("price") for p in products]
    titles = [str(p.get("title") or p["id"]) for p in products]
    unknown = math.inf
    price_asc = _ranks([(unknown if v is None else float(v), i) for i, v in enumerate(prices)])
    price_desc = _ranks([(unknown if v is None else -float(v), i) for i, v in enumerate(prices)])
    title_rank = _ranks([(t.casefold(), i) for i, t in enumerate(titles)])

    thumb_of = _ThumbFinder(folder)
    con = sqlite3.connect(tmp)
    try:
        con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        def resolved(found: Mapping[str, Sequence[Sequence[Any]]], pid: str) -> str:
            pairs = [[row_of[str(nid)], float(score)] for nid, score in found.get(pid) or ()]
            return json.dumps(pairs, separators=(",", ":"))

        con.executemany("INSERT INTO rec_rows VALUES (?, ?, ?, ?)", (
            (position, str(entry["key"]), str(entry.get("title") or entry["key"]),
             json.dumps(list(entry.get("score_quantiles") or [])))
            for position, (entry, _) in enumerate(rows)))
        for position, (_, found) in enumerate(rows[1:], start=1):
            con.executemany("INSERT INTO row_neighbours VALUES (?, ?, ?)", (
                (i, position, resolved(found, str(p["id"]))) for i, p in enumerate(products)))
        records = []
        for i, p in enumerate(products):
            xy = p.get("xy")
            records.append((
                i, str(p["id"]), titles[i], prices[i], p.get("currency") or None,
                p.get("product_url") or None, thumb_of(p),
                json.dumps(attrs_of[i], ensure_ascii=False, separators=(",", ":")),
                xy[0] if xy else None, xy[1] if xy else None,
                resolved(rows[0][1], str(p["id"])),
                price_asc[i], price_desc[i], title_rank[i],
            ))
        con.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", records)
        del records
        tags = _write_attributes(con, attrs_of)
        con.executemany(
            "INSERT INTO search (rowid, title, attrs, tags) VALUES (?, ?, ?, ?)",
            ((i, searchable_text(titles[i]), searchable_text(" ".join(attrs_of[i].values())),
              " ".join(tags[i]))
             for i in range(len(products))),
        )
        info = {
            "index_version": str(INDEX_VERSION),
            "n_products": str(len(products)),
            "source": json.dumps(source_signature(folder), sort_keys=True)
                      if (folder / META_FILE).is_file() else "",
        }
        con.executemany("INSERT INTO info VALUES (?, ?)", info.items())
        con.execute("INSERT INTO search(search) VALUES ('optimize')")
        con.execute("INSERT INTO info VALUES ('dense_rows', ?)",
                    (str(write_search_sets(con, len(products))),))
        con.commit()
        con.execute("VACUUM")
    except BaseException:
        con.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    con.close()
    os.replace(tmp, out)
    return out


def tag(value_id: int) -> str:
    """The search index's token for one attribute value (filters match on it): a
    private-use mark and the value's id, so no search word's prefix expands over tags."""
    return f"{_TAG_MARK}{value_id}"


def fts_phrase(form: str, prefix: bool = False) -> str:
    """An FTS5 phrase for one search form (quoted; `prefix`: any word it starts)."""
    return '"' + form.replace('"', '""') + '"' + ("*" if prefix else "")


def set_query(kind: str, form: str) -> str:
    """The FTS5 MATCH expression of one row set kind (SET_KINDS) of a form."""
    columns = "title" if kind[0] == "t" else "{title attrs}"
    return f"{columns} : {fts_phrase(form, prefix=kind[1] == 'p')}"


def match_bits(con: sqlite3.Connection, match: str, n_rows: int) -> bytearray:
    """The rows matching an FTS5 expression, as a little-endian bitset of n_rows bits."""
    buf = bytearray((n_rows + 7) // 8)
    for (r,) in con.execute("SELECT rowid FROM search WHERE search MATCH ?", (match,)):
        buf[r >> 3] |= 1 << (r & 7)
    return buf


def _canonical(prefix: str, terms: Sequence[str]) -> tuple[str, bool] | None:
    """The longest form with the same tokens under it as `prefix` in the sorted `terms`
    (so both have one row set: the common start of the first and last such token), and
    whether that form is the only such token; None when no token starts with `prefix`."""
    lo = bisect.bisect_left(terms, prefix)
    hi = bisect.bisect_left(terms, prefix + "\U0010ffff")
    if lo >= hi:
        return None
    first, last = terms[lo], terms[hi - 1]
    same = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b),
                len(first))
    form = first[:same]  # sorted: every token between them starts with it too
    return form, form == first and hi - lo == 1


def write_search_sets(con: sqlite3.Connection, n_rows: int) -> int:
    """Store the row sets of every form (of at most MAX_SET_FORM_CHARS characters) that
    starts a word of the title or attributes of at least `dense_rows` products (returned),
    read from the written FTS5 index.

    Candidates come from the index's vocabulary (a prefix's bound is the sum of its
    tokens' row counts); forms with the same tokens under them share one set, so each
    distinct set is read from FTS5 once.
    """
    dense = max(DENSE_MIN_ROWS, n_rows // DENSE_FRACTION)
    if n_rows < dense:
        return dense
    con.execute("CREATE VIRTUAL TABLE temp.search_vocab USING fts5vocab(main, search, 'col')")
    any_docs: dict[str, int] = {}
    title_docs: dict[str, int] = {}
    for term, col, docs in con.execute(
            "SELECT term, col, doc FROM temp.search_vocab WHERE col IN ('title', 'attrs')"):
        any_docs[term] = any_docs.get(term, 0) + docs
        if col == "title":
            title_docs[term] = docs
    con.execute("DROP TABLE temp.search_vocab")
    bound: dict[str, int] = {}
    for term, docs in any_docs.items():
        for end in range(1, min(len(term), MAX_SET_FORM_CHARS) + 1):
            bound[term[:end]] = bound.get(term[:end], 0) + docs
    any_terms, title_terms = sorted(any_docs), sorted(title_docs)

    sets: dict[tuple[str, str], tuple[int, bytes]] = {}  # (kind, canonical form) -> set

    def read(kind: str, prefix: str) -> tuple[int, bytes] | None:
        terms = title_terms if kind[0] == "t" else any_terms
        found = _canonical(prefix, terms) if kind[1] == "p" else (
            (prefix, True) if prefix in (title_docs if kind[0] == "t" else any_docs) else None)
        if found is None:
            return None
        form, whole = found
        key = (kind[0] + "w" if whole else kind, form)
        if key not in sets:
            buf = match_bits(con, set_query(*key), n_rows)
            sets[key] = (int.from_bytes(buf, "little").bit_count(), bytes(buf))
        return sets[key]

    stored: dict[bytes, int] = {}  # bitset -> bits_id
    for form in sorted(p for p, b in bound.items() if b >= dense):
        found = read("ap", form)
        if found is None or found[0] < dense:
            continue
        for kind in SET_KINDS:
            got = read(kind, form)
            if got is None or not got[0]:
                continue  # empty: a kind missing for a stored form
            n, bits = got
            if bits not in stored:
                stored[bits] = len(stored) + 1
                con.execute("INSERT INTO search_bits VALUES (?, ?, ?)",
                            (stored[bits], n, zlib.compress(bits, 6)))
            con.execute("INSERT INTO search_sets VALUES (?, ?, ?)", (form, kind, stored[bits]))
    return dense


def _write_attributes(con: sqlite3.Connection, attrs_of: Sequence[dict[str, str]]
                      ) -> list[list[str]]:
    """Per attribute its coverage, and for those with few enough values each value's id
    and count; returns each product's value tags."""
    values: dict[str, dict[str, list[int]]] = {}
    covered: dict[str, int] = {}
    for row, attrs in enumerate(attrs_of):
        for name, value in attrs.items():
            by_value = values.setdefault(name, {})
            if value:
                by_value.setdefault(value, []).append(row)
                covered[name] = covered.get(name, 0) + 1
    tags: list[list[str]] = [[] for _ in attrs_of]
    value_id = 0
    for position, (name, by_value) in enumerate(values.items()):
        indexed = len(by_value) <= MAX_INDEXED_VALUES
        con.execute("INSERT INTO attr_stats VALUES (?, ?, ?, ?, ?)",
                    (name, position, len(by_value), covered.get(name, 0), int(indexed)))
        if not indexed:
            continue
        for value, rows in by_value.items():
            value_id += 1
            con.execute("INSERT INTO attr_values VALUES (?, ?, ?, ?)",
                        (value_id, name, value, len(rows)))
            for r in rows:
                tags[r].append(tag(value_id))
    return tags


def derive_shop_index(folder: str | Path, out: str | Path | None = None) -> Path:
    """Read and validate a folder's JSON files, then write its index (one-line errors)."""
    pre = read_precomputed(folder)
    rows = [(entry, pre.rows[entry["key"]]) for entry in pre.meta["rows"]]
    return write_shop_index(pre.folder, pre.products, pre.neighbours, out, rows)


def index_is_current(index: Path, folder: Path, current: dict[str, Any] | None = None
                     ) -> bool:
    """Whether `index` is a readable index derived from the folder's current files, by
    content (:func:`source_signature`; `current` is the folder's, when already computed).

    A folder deployed with only meta.json and its index (the JSON files left out of a
    Heroku slug) is current when meta.json is the one the index was built with.
    """
    try:
        con = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            info = dict(con.execute("SELECT key, value FROM info").fetchall())
        finally:
            con.close()
        recorded = json.loads(info.get("source") or "{}")
        current = current or source_signature(folder)
    except (sqlite3.Error, OSError, ValueError):
        return False
    if info.get("index_version") != str(INDEX_VERSION) or not isinstance(recorded, dict):
        return False
    if None in current["sizes"]:
        return recorded.get("meta") == current["meta"]
    return recorded == current


def attribute_values(con: sqlite3.Connection, name: str) -> list[tuple[str, int]]:
    """(value, count) of one indexed attribute, most common first."""
    return [(v, n) for v, n in con.execute(
        "SELECT value, count FROM attr_values WHERE name = ? ORDER BY count DESC, value",
        (name,))]


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m pipeline.shop_index FOLDER [--out FILE]`: (re)derive a folder's index."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        path = derive_shop_index(args.folder, args.out)
    except PrecomputedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
