"""A catalog search's words resolved to rows once per request, as bitsets (bit r = row r).

The catalog page ranks a search in four tiers and counts its filters' values over the
results. Done as one FTS5 MATCH per tier and per count, every short prefix was expanded
again each time, and repeated words too: twelve `b`s with filters took 2 s at 300,000
products. Here each distinct word is resolved once to its four row sets (SET_KINDS: a
whole word or the start of one, in the title or anywhere), and tiers, counts and pages
are bit operations on them.

The cost cap: a word that starts a word of many products (at least the index's
`dense_rows`, 1/64 of the catalog) is read from the sets the build stored
(`pipeline.shop_index.write_search_sets`); every other word matches fewer products, and
all of them are read by one FTS5 query per kind. So a search of at most MAX_WORDS words
(two forms each, with the singular) reads at most 4 x 24 stored sets of N/8 bytes and
FTS5 postings of fewer than `dense_rows` products per word, whatever the words are.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pipeline.shop_index import SET_KINDS, TOKENIZER, fts_phrase, match_bits, singular

from .query import MAX_WORDS


@dataclass(frozen=True, slots=True)
class TextMatch:
    """The rows of a search: where every word starts a word of the title or attributes
    (`rows`), and the subsets the relevance tiers are made of."""

    rows: int
    title_whole: int  # every word (or its singular) is a whole word of the title
    title_prefix: int  # ... starts a word of the title
    any_whole: int  # ... is a whole word of the title or attributes

    def tiers(self) -> tuple[int, int, int, int]:
        """The relevance tiers, best first, disjoint: all words whole in the title,
        starting words of the title, whole anywhere, the rest."""
        return (self.title_whole,
                self.title_prefix & ~self.title_whole,
                self.any_whole & ~self.title_prefix,
                self.rows & ~(self.title_prefix | self.any_whole))


class _Tokenizer:
    """The index's own tokenizer on a private in-memory FTS5 table, so a search word
    becomes exactly the index's tokens ("Café" -> "cafe")."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            con = sqlite3.connect(":memory:", check_same_thread=False)
            con.execute(f"CREATE VIRTUAL TABLE words USING fts5 (text, tokenize='{TOKENIZER}')")
            con.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab (words, 'instance')")
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def tokens(self, word: str) -> list[str]:
        """The index tokens of one search word (lowercase letters and digits: itself)."""
        if word.isascii():
            return [word]
        con = self._connection()
        con.execute("INSERT INTO words (rowid, text) VALUES (1, ?)", (word,))
        try:
            return [t for (t,) in con.execute("SELECT term FROM tokens ORDER BY offset")]
        finally:
            con.execute("DELETE FROM words")


_TOKENIZER = _Tokenizer()


def search_forms(words: Iterable[str]) -> list[tuple[str, ...]]:
    """Each distinct search word's index token and its singular (the forms any of which
    may match), at most MAX_WORDS words; a word the index splits counts as its tokens."""
    tokens = dict.fromkeys(t for w in words for t in _TOKENIZER.tokens(w) if t)
    return [tuple(dict.fromkeys((t, singular(t)))) for t in list(tokens)[:MAX_WORDS]]


class WordSets:
    """Row sets of search words from one index: stored sets for words of many products,
    one FTS5 query per kind for the rest (see the module's cost cap)."""

    def __init__(self, connection: Callable[[], sqlite3.Connection], n_rows: int) -> None:
        self._connection = connection
        self.n_rows = n_rows
        self.all_rows = (1 << n_rows) - 1

    def match(self, words: Sequence[str]) -> TextMatch:
        """Resolve search words (lowercase, as `pipeline.shop_index.search_words` gives
        them): each form's sets are read once, then combined."""
        forms = search_forms(words)
        stored = {f: self._stored(f) for word in forms for f in word}
        found: dict[str, int] = {}
        for kind in ("ap", "tp", "aw", "tw"):  # "ap" first: the others are subsets of it
            bits = found.get("ap", self.all_rows)
            sparse = []
            for word in forms:
                if not bits:
                    break
                if all(stored[f] is None for f in word):
                    sparse.append(word)
                    continue
                either = 0
                for f in word:
                    sets = stored[f]
                    either |= (sets.get(kind, 0) if sets is not None
                               else self._fts_bits(kind, [(f,)]))
                bits &= either
            if bits and sparse:
                bits &= self._fts_bits(kind, sparse)
            found[kind] = bits
        return TextMatch(rows=found["ap"], title_whole=found["tw"],
                         title_prefix=found["tp"], any_whole=found["aw"])

    def stored_forms(self) -> list[str]:
        """Every form with stored sets in the index (sorted)."""
        return [f for (f,) in self._connection().execute(
            "SELECT DISTINCT form FROM search_sets ORDER BY form")]

    def _stored(self, form: str) -> dict[str, int] | None:
        """A form's stored sets by kind (a kind missing is empty), or None when the
        form starts a word of fewer than the index's `dense_rows` products."""
        found = self._connection().execute(
            "SELECT kind, n, bits FROM search_sets JOIN search_bits USING (bits_id) "
            "WHERE form = ?", (form,)).fetchall()
        if not found:
            return None
        return {kind: int.from_bytes(zlib.decompress(blob), "little") if n else 0
                for kind, n, blob in found}

    def _fts_bits(self, kind: str, words: Sequence[tuple[str, ...]]) -> int:
        """Rows where every word (one of its forms) is of this kind, by one FTS5 query."""
        assert kind in SET_KINDS
        columns = "title" if kind[0] == "t" else "{title attrs}"
        prefix = kind[1] == "p"
        each = [" OR ".join(fts_phrase(f, prefix) for f in word) for word in words]
        match = f"{columns} : (" + " AND ".join(f"({e})" for e in each) + ")"
        return int.from_bytes(match_bits(self._connection(), match, self.n_rows), "little")


# ----------------------------------------------------------------------------- bitsets


def nth_rows(bits: int, n_rows: int, skip: int, take: int) -> list[int]:
    """The rows of set bits number skip .. skip + take - 1 (ascending), found by counting
    the bits of 4,096 rows at a time (no Python loop over every row)."""
    rows: list[int] = []
    if take <= 0 or skip < 0 or not bits:
        return rows
    data = bits.to_bytes((n_rows + 7) // 8, "little")
    step = 512  # bytes
    for start in range(0, len(data), step):
        chunk = int.from_bytes(data[start:start + step], "little")
        n = chunk.bit_count()
        if skip >= n:
            skip -= n
            continue
        ones = bin(chunk)[:1:-1]  # bit 0 first
        at = -1
        for _ in range(min(n, skip + take - len(rows))):
            at = ones.index("1", at + 1)
            if skip:
                skip -= 1
            else:
                rows.append(start * 8 + at)
        if len(rows) == take:
            break
    return rows


_FLAGS = bytes.maketrans(b"01", b"\x00\x01")


def row_flags(bits: int, n_rows: int) -> bytes:
    """One byte per row, 1 where the bit is set: SQLite tests a row with
    `substr(flags, row + 1, 1) = x'01'` while it walks a sort index."""
    return bin(bits)[:1:-1].ljust(n_rows, "0").encode("ascii").translate(_FLAGS)
