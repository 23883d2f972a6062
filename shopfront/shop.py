"""The loaded shop: a precomputed folder opened for serving, and every query a page makes.

Products, neighbours, attribute filters and the search index live in the folder's
`shop.sqlite` (`pipeline.shop_index`, contract 2), not in Python objects: a worker's memory
does not grow with the catalog, and start-up reads only `meta.json` and a few small tables.
A folder without a current index gets one derived once, in a child process, so the
parent (gunicorn's master under `--preload`) never holds the parsed JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.precomputed import META_FILE, REQUIRED_FILES, PrecomputedError, read_meta
from pipeline.shop_index import (
    INDEX_FILE,
    attribute_values,
    fts_phrase,
    index_is_current,
    match_bits,
    search_words,
    source_signature,
    tag,
)

from .query import RESERVED_QUERY_KEYS, CatalogQuery
from .text import attribute_label, format_price
from .text_search import TextMatch, WordSets, nth_rows, row_flags

PLACEHOLDER_URL = "/assets/placeholder.svg"
MAX_FACETS = 6  # filters shown on the catalog page
MAX_FACET_VALUES = 200  # more values than this is not a filter (articleType has ~100)
MAP_POINTS = 20_000  # the explore map shows an even sample of at most this many products
SORT_IN_SQL = 2_000  # fewer results are sorted by SQLite, more by walking a sort index
_COLUMNS = "row, id, title, price, currency, product_url, thumb, attrs, x, y"


@dataclass(frozen=True, slots=True)
class Item:
    """One product as the pages show it."""

    row: int
    id: str
    title: str
    price: float | None
    price_text: str
    product_url: str | None
    thumb_url: str
    href: str
    attrs_json: str
    xy: tuple[float, float] | None

    @property
    def attrs(self) -> dict[str, str]:
        """Attribute name -> value (parsed on use: most cards never show them)."""
        return json.loads(self.attrs_json)


@dataclass(frozen=True, slots=True)
class RowSpec:
    """One recommendation row of the folder: key, shopper-facing title and its
    score_quantiles (empty: the folder carries no calibration)."""

    position: int
    key: str
    title: str
    quantiles: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ProductRow:
    """One row of a product page: its spec and (neighbour, score) pairs, best first."""

    spec: RowSpec
    pairs: list[tuple[Item, float]]


@dataclass(frozen=True, slots=True)
class Facet:
    """A filterable attribute: its name and (value, count) options, most common first."""

    name: str
    label: str
    options: tuple[tuple[str, int], ...]


def private_index_dir() -> Path:
    """This user's directory for derived indexes, `lookalike-<uid>` in the temp dir:
    created 0700; refused (one line) unless it is a real directory, ours, and writable by
    no one else, so no other user can plant or swap an index in it."""
    uid = os.getuid()
    path = Path(tempfile.gettempdir()) / f"lookalike-{uid}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    try:
        info = path.lstat()  # a symlink is refused, never followed
    except OSError as e:
        raise PrecomputedError(f"{path}: cannot use it for derived indexes ({e.strerror})"
                               ) from None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != uid
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        kind = "directory" if stat.S_ISDIR(info.st_mode) else "symlink or file"
        raise PrecomputedError(
            f"{path} is not a private directory of this user (a {kind} of uid "
            f"{info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}); remove it, or set TMPDIR "
            "to a directory of your own")
    return path


def index_path_for(folder: Path) -> Path:
    """Where a folder's index lives: inside it if the folder is writable, else in this
    user's private directory (:func:`private_index_dir`), named after the folder's path."""
    if os.access(folder, os.W_OK):
        return folder / INDEX_FILE
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return private_index_dir() / f"{key}-{INDEX_FILE}"


def _is_own_file(path: Path) -> bool:
    """Whether `path` is a regular file (not a symlink) of this user."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()


def ensure_index(folder: Path) -> Path:
    """The folder's current index, derived in a child process when missing or stale.

    An index counts as current only when the sha256 of the folder's JSON files matches
    the one recorded in it (:func:`pipeline.shop_index.index_is_current`); one outside the
    folder must also be a file of this user in its private directory.
    """
    index = folder / INDEX_FILE
    current = source_signature(folder) if (folder / META_FILE).is_file() else None
    if index.is_file() and index_is_current(index, folder, current):
        return index
    index = index_path_for(folder)
    if (index.parent == folder or _is_own_file(index)) and index_is_current(
            index, folder, current):
        return index
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.shop_index", str(folder), "--out", str(index)],
        capture_output=True, text=True, check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["index failed"]
        raise PrecomputedError(lines[-1].removeprefix("error: "))
    return index


class Shop:
    """A precomputed folder opened for serving (read-only; one SQLite connection per thread)."""

    def __init__(self, folder: str | Path, index: Path | None = None) -> None:
        self.folder = Path(folder)
        # A folder may ship only meta.json and its index (JSON left out of a slug).
        shipped_index = (self.folder / INDEX_FILE).is_file()
        self.meta = read_meta(self.folder, (META_FILE, INDEX_FILE) if shipped_index
                              else REQUIRED_FILES)
        self.index_path = index or ensure_index(self.folder)
        self._local = threading.local()
        con = self._connection()
        self.n_products = int(con.execute("SELECT count(*) FROM products").fetchone()[0])
        self.facets = self._pick_facets(con)
        self._value_ids = {
            f.name: dict(con.execute(
                "SELECT value, value_id FROM attr_values WHERE name = ?", (f.name,)))
            for f in self.facets
        }
        self.has_prices = con.execute(
            "SELECT 1 FROM products WHERE price IS NOT NULL LIMIT 1").fetchone() is not None
        self.filter_choices = {f.name: frozenset(v for v, _ in f.options) for f in self.facets}
        self._all_rows = (1 << self.n_products) - 1  # every product, as a bitset
        self.word_sets = WordSets(self._connection, self.n_products)
        # one bitset of rows per facet value, for counts that follow the results: N/8
        # bytes each (300,000 products x 200 values: 7.5 MB, shared by forked workers)
        self._value_bits = {
            f.name: {v: self._rows_bits(f"tags : {fts_phrase(tag(i))}")
                     for v, i in self._value_ids[f.name].items()}
            for f in self.facets
        }
        self.n_mapped = int(con.execute(
            "SELECT count(*) FROM products WHERE x IS NOT NULL").fetchone()[0])
        self.rows = [RowSpec(pos, key, title, tuple(float(q) for q in json.loads(qs)))
                     for pos, key, title, qs in con.execute(
                         "SELECT position, key, title, quantiles FROM rec_rows ORDER BY position")]
        self._close_connection()  # opened again per process/thread (gunicorn forks after this)

    # ------------------------------------------------------------------ connection

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            con = sqlite3.connect(f"file:{self.index_path}?mode=ro&immutable=1", uri=True,
                                  check_same_thread=False)
            con.execute("PRAGMA cache_size = -8000")  # 8 MB page cache per connection
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def _close_connection(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ metadata

    @property
    def metric(self) -> str:
        """"cosine" (score = similarity, higher is closer) or "euclidean" (distance)."""
        return str(self.meta.get("metric") or "cosine")

    @property
    def name(self) -> str:
        """The shop's display name ("" when meta.json has none)."""
        return str(self.meta.get("name") or "")

    def _pick_facets(self, con: sqlite3.Connection) -> list[Facet]:
        """Attributes worth filtering by: 2..MAX_FACET_VALUES values, set on most products."""
        facets = []
        for name, n_values, covered in con.execute(
            "SELECT name, n_values, covered FROM attr_stats WHERE indexed ORDER BY position"
        ):
            if name in RESERVED_QUERY_KEYS or not 2 <= n_values <= MAX_FACET_VALUES:
                continue
            if covered < 0.5 * self.n_products or n_values >= covered:
                continue
            facets.append(Facet(name, attribute_label(name),
                                tuple(attribute_values(con, name))))
        return facets[:MAX_FACETS]

    def facet(self, name: str) -> Facet | None:
        """The facet with this attribute name, or None."""
        return next((f for f in self.facets if f.name == name), None)

    # ------------------------------------------------------------------ products

    def _item(self, row: tuple[Any, ...]) -> Item:
        i, pid, title, price, currency, product_url, thumb, attrs, x, y = row
        quoted = quote(pid, safe="")
        if not thumb:
            thumb_url = PLACEHOLDER_URL
        elif thumb.startswith(("https://", "http://")):
            thumb_url = thumb
        else:
            thumb_url = f"/thumbs/{quoted}.jpg"
        return Item(i, pid, title, price, format_price(price, currency), product_url,
                    thumb_url, f"/product/{quoted}", attrs, None if x is None else (x, y))

    def item(self, product_id: str) -> Item | None:
        """The product with this id, or None."""
        if not isinstance(product_id, str):
            return None
        row = self._connection().execute(
            f"SELECT {_COLUMNS} FROM products WHERE id = ?", (product_id,)).fetchone()
        return None if row is None else self._item(row)

    def items(self, rows: list[int]) -> list[Item]:
        """Products by row number, in the order given."""
        if not rows:
            return []
        found = {
            r[0]: self._item(r) for r in self._connection().execute(
                f"SELECT {_COLUMNS} FROM products WHERE row IN ({','.join('?' * len(rows))})",
                rows)
        }
        return [found[r] for r in rows if r in found]

    def neighbours(self, product_id: str) -> tuple[Item, list[tuple[Item, float]]] | None:
        """A product and its first row of look-alikes with their scores, best first (None:
        unknown id)."""
        found = self.product_rows(product_id)
        if found is None:
            return None
        item, rows = found
        return item, (rows[0].pairs if rows and rows[0].spec.position == 0 else [])

    def product_rows(self, product_id: str) -> tuple[Item, list[ProductRow]] | None:
        """A product and every recommendation row of it, in the folder's order (rows with
        no neighbours for this product left out); None for an unknown id."""
        if not isinstance(product_id, str):
            return None
        con = self._connection()
        found = con.execute(
            f"SELECT {_COLUMNS}, neighbours FROM products WHERE id = ?", (product_id,)
        ).fetchone()
        if found is None:
            return None
        item = self._item(found[:-1])
        pairs_of = {0: json.loads(found[-1])}
        for position, text in con.execute(
            "SELECT position, neighbours FROM row_neighbours WHERE row = ?", (item.row,)
        ):
            pairs_of[position] = json.loads(text)
        wanted = sorted({r for pairs in pairs_of.values() for r, _ in pairs})
        by_row = {it.row: it for it in self.items(wanted)}
        rows = []
        for spec in self.rows:
            pairs = [(by_row[r], s) for r, s in pairs_of.get(spec.position, ()) if r in by_row]
            if pairs:
                rows.append(ProductRow(spec, pairs))
        return item, rows

    def thumb_file(self, product_id: str) -> str | None:
        """A product's thumbnail path relative to the folder (None: unknown or external)."""
        found = self._connection().execute(
            "SELECT thumb FROM products WHERE id = ?", (product_id,)).fetchone()
        if found is None or not found[0] or found[0].startswith(("https://", "http://")):
            return None
        return str(found[0])

    def external_thumb_origins(self) -> list[str]:
        """Origins (scheme://host) of absolute thumbnail URLs, for the page's CSP."""
        base = self.meta.get("thumb_base_url")
        if isinstance(base, str) and base.startswith(("https://", "http://")):
            scheme, _, rest = base.partition("://")
            return [f"{scheme}://{rest.split('/', 1)[0]}"]
        found = self._connection().execute(
            "SELECT thumb FROM products WHERE thumb LIKE 'http%://%' LIMIT 1").fetchone()
        if found:
            scheme, _, rest = found[0].partition("://")
            return [f"{scheme}://{rest.split('/', 1)[0]}"]
        return []

    # ------------------------------------------------------------------ catalog search

    def matching(self, query: CatalogQuery, page_size: int) -> tuple[int, int, list[Item]]:
        """Number of products matching the query, the page shown (query.page, or the last
        page if that is past the end) and that page's products, in the query's order.

        Filters OR within an attribute and AND across attributes; every search word must
        start a word of the title or of an attribute value. "featured" order is the id
        order, by relevance tier first when there is a search. Computed on bitsets of rows:
        the search's words are resolved once per request (`text_search`), the filters'
        values were read at start-up.
        """
        text = self._text_match(query.q)
        chosen = self._chosen_bits(query)
        found = text.rows if text is not None else self._all_rows
        for bits in chosen.values():
            found &= bits
        total = found.bit_count()
        page = min(query.page, max(1, -(-total // page_size)))
        offset = (page - 1) * page_size
        order = {"price-asc": "price_asc", "price-desc": "price_desc",
                 "title": "title_rank"}.get(query.sort)
        if not total:
            rows: list[int] = []
        elif order:
            rows = self._sorted_rows(found, total, order, page_size, offset)
        elif text is None:  # id order
            rows = nth_rows(found, self.n_products, offset, page_size)
        else:  # by relevance tier, then in id order
            rows = []
            for tier in text.tiers():
                tier &= found
                n = tier.bit_count()
                if offset < n:
                    rows += nth_rows(tier, self.n_products, offset, page_size - len(rows))
                    if len(rows) == page_size:
                        break
                offset = max(0, offset - n)
        return total, page, self.items(rows)

    def _text_match(self, q: str) -> TextMatch | None:
        """The search's rows (None: no words to search for), resolved once for the
        request: the catalog page asks for its results and then for its counts."""
        words = search_words(q)
        if not words:
            return None
        last = getattr(self._local, "text", None)
        if last is None or last[0] != words or last[1] != os.getpid():
            last = (words, os.getpid(), self.word_sets.match(words))
            self._local.text = last
        return last[2]

    def _chosen_bits(self, query: CatalogQuery) -> dict[str, int]:
        """Per filtered attribute, the rows with any of its chosen values."""
        chosen = {}
        for name, values in query.filters:
            of_facet = self._value_bits.get(name)
            if of_facet is None:
                continue
            bits = 0
            for value in values:
                bits |= of_facet.get(value, 0)
            chosen[name] = bits
        return chosen

    def _sorted_rows(self, found: int, total: int, order: str, limit: int, offset: int
                     ) -> list[int]:
        """A page of the rows in `found` in a sort order: the few sorted by SQLite, or
        else the sort index walked while SQLite tests each row against the set."""
        con = self._connection()
        if found == self._all_rows:
            return [r for (r,) in con.execute(
                f"SELECT row FROM products INDEXED BY products_{order} ORDER BY {order} "
                "LIMIT ? OFFSET ?", (limit, offset))]
        if total <= SORT_IN_SQL:
            rows = nth_rows(found, self.n_products, 0, total)
            return [r for (r,) in con.execute(
                f"SELECT row FROM products WHERE row IN ({','.join('?' * len(rows))}) "
                f"ORDER BY {order} LIMIT ? OFFSET ?", [*rows, limit, offset])]
        return [r for (r,) in con.execute(
            f"SELECT row FROM products INDEXED BY products_{order} "
            f"WHERE substr(?, row + 1, 1) = x'01' ORDER BY {order} LIMIT ? OFFSET ?",
            (row_flags(found, self.n_products), limit, offset))]

    def facet_counts(self, query: CatalogQuery) -> dict[str, dict[str, int]]:
        """For every facet, how many of the current results each of its values would give.

        A value's count is over the products matching the search and the *other* facets'
        filters (choosing a second value of one facet widens the results, as in any
        shop). Computed on bitsets of rows (`_value_bits`, one per facet value, built at
        start-up, and the search's, shared with `matching`): a count is one AND and a
        popcount, so the cost does not depend on how many products match.
        """
        if not self.facets:
            return {}
        text = self._text_match(query.q)
        everything = self._all_rows
        base = text.rows if text is not None else everything
        chosen = self._chosen_bits(query)
        counts: dict[str, dict[str, int]] = {}
        for facet in self.facets:
            within = base
            for name, bits in chosen.items():
                if name != facet.name:
                    within &= bits
            values = self._value_bits.get(facet.name, {})
            if within == everything:
                counts[facet.name] = dict(facet.options)
            else:
                counts[facet.name] = {v: (within & values.get(v, 0)).bit_count()
                                      for v, _ in facet.options}
        return counts

    def _rows_bits(self, match: str) -> int:
        """The rows matching an FTS5 expression, as a bitset (bit r = row r)."""
        return int.from_bytes(match_bits(self._connection(), match, self.n_products), "little")

    # ------------------------------------------------------------------ explore map

    def map_points(self, attr: str | None) -> list[tuple[Item, str]]:
        """An even sample of at most MAP_POINTS products with 2-D positions, and each
        one's value of `attr` ("" when unset or `attr` is None)."""
        step = max(1, -(-self.n_mapped // MAP_POINTS))
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM products WHERE x IS NOT NULL AND row % ? = 0 ORDER BY row",
            (step,),
        ).fetchall()
        items = [self._item(r) for r in rows]
        if not attr:
            return [(item, "") for item in items]
        return [(item, item.attrs.get(attr, "")) for item in items]
