"""The crawl manifest: ``<catalog>/manifest.sqlite``, the crawl's memory between runs.

SQLite because every state change is one committed transaction: a crawl killed at any
moment leaves either the old or the new state, never half a row. Tables:

- ``pages``: listing pages, with status and the next-page URL found on them, so a
  resumed crawl walks finished pages without fetching them again.
- ``products``: one row per product (key = product URL, else ``image:<url>``) with
  status ``pending | done | skipped | failed``, the reason (a pending product with a
  reason was deferred: its host was off limits this run), and the finished catalog row.
- ``images``: sha256 -> stored file, so a shared image is stored once.
- ``attempts``: an append-only log of every page/product/image attempt and its outcome.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

_URL = re.compile(r"https?://\S+")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY, status TEXT NOT NULL, error TEXT, next_url TEXT,
    n_products INTEGER DEFAULT 0, updated REAL);
CREATE TABLE IF NOT EXISTS products (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, listing_url TEXT, record TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, id TEXT, row TEXT, attempts INTEGER DEFAULT 0,
    updated REAL);
CREATE INDEX IF NOT EXISTS products_id ON products(id);
CREATE TABLE IF NOT EXISTS images (
    sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, image_url TEXT, first_id TEXT);
CREATE TABLE IF NOT EXISTS attempts (
    at REAL, kind TEXT, key TEXT, url TEXT, status TEXT, error TEXT);
"""


class Manifest:
    """Thin wrapper over the SQLite file; every public method commits."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # meta ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the meta table."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # pages -----------------------------------------------------------------------------
    def page(self, url: str) -> sqlite3.Row | None:
        """The stored state of a listing page."""
        cur = self.db.execute("SELECT status, error, next_url FROM pages WHERE url=?", (url,))
        return cur.fetchone()

    def record_listing(self, url: str, status: str, error: str | None, next_url: str | None,
                       records: list[dict[str, Any]], refresh: bool) -> int:
        """Store a listing page's outcome and its products in one transaction.

        New products are added as pending. With ``refresh``, a known product whose
        listing data changed, or that was skipped or failed, is set back to pending.
        Returns the number of new products.
        """
        now = time.time()
        new = 0
        with self.db:
            self.db.execute("BEGIN")
            seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM products").fetchone()[0]
            for rec in records:
                key = rec["key"]
                body = json.dumps(rec["record"], sort_keys=True)
                old = self.db.execute("SELECT record, status FROM products WHERE key=?",
                                      (key,)).fetchone()
                if old is None:
                    seq += 1
                    new += 1
                    self.db.execute(
                        "INSERT INTO products (key, seq, listing_url, record, status, updated)"
                        " VALUES (?, ?, ?, ?, 'pending', ?)", (key, seq, url, body, now))
                elif refresh and (old[0] != body or old[1] in ("skipped", "failed")):
                    self.db.execute("UPDATE products SET record=?, status='pending', error=NULL,"
                                    " updated=? WHERE key=?", (body, now, key))
            self.db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)",
                            (url, status, error, next_url, len(records), now))
            self.db.execute("INSERT INTO attempts VALUES (?, 'listing', ?, ?, ?, ?)",
                            (now, url, url, status, error))
        return new

    # products --------------------------------------------------------------------------
    def todo(self) -> list[tuple[str, dict[str, Any]]]:
        """Products still to do (pending or failed), in discovery order."""
        cur = self.db.execute("SELECT key, record FROM products WHERE status IN "
                              "('pending', 'failed') ORDER BY seq")
        return [(k, json.loads(r)) for k, r in cur.fetchall()]

    def id_owner(self, product_id: str, key: str) -> str | None:
        """The key of another finished product that already uses ``product_id``."""
        row = self.db.execute("SELECT key FROM products WHERE id=? AND key<>? AND "
                              "status='done'", (product_id, key)).fetchone()
        return row[0] if row else None

    def done_ids(self) -> dict[str, str]:
        """id -> key of every finished product."""
        cur = self.db.execute("SELECT id, key FROM products WHERE status='done'")
        return dict(cur.fetchall())

    def image_path(self, sha256: str) -> str | None:
        """Where an image with this digest is already stored."""
        row = self.db.execute("SELECT path FROM images WHERE sha256=?", (sha256,)).fetchone()
        return row[0] if row else None

    def finish(self, key: str, status: str, error: str | None, product_id: str | None = None,
               row: dict[str, Any] | None = None, image: tuple[str, str, str] | None = None,
               url: str | None = None) -> None:
        """Record a product's outcome (and its stored image) in one transaction."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            if image is not None:
                sha, path, image_url = image
                self.db.execute("INSERT OR IGNORE INTO images VALUES (?, ?, ?, ?)",
                                (sha, path, image_url, product_id))
            self.db.execute(
                "UPDATE products SET status=?, error=?, id=?, row=?, attempts=attempts+1,"
                " updated=? WHERE key=?",
                (status, error, product_id, json.dumps(row) if row else None, now, key))
            self.db.execute("INSERT INTO attempts VALUES (?, 'product', ?, ?, ?, ?)",
                            (now, key, url or key, status, error))

    def rows(self) -> list[dict[str, Any]]:
        """Finished catalog rows, sorted by id."""
        cur = self.db.execute("SELECT row FROM products WHERE status='done' ORDER BY id")
        return [json.loads(r) for (r,) in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        """Products per status."""
        cur = self.db.execute("SELECT status, COUNT(*) FROM products GROUP BY status")
        return dict(cur.fetchall())

    def reasons(self, status: str) -> list[tuple[str, int, str]]:
        """(reason, count, example key) for products with this status, most common first;
        URLs inside reasons are folded so the same cause groups together."""
        cur = self.db.execute("SELECT error, key FROM products WHERE status=? AND (status<>"
                              "'pending' OR error IS NOT NULL) ORDER BY key", (status,))
        groups: dict[str, list[str]] = {}
        for error, key in cur.fetchall():
            groups.setdefault(_URL.sub("<url>", error or "no reason recorded"), []).append(key)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return [(reason, len(keys), keys[0]) for reason, keys in ordered]

    def failed_pages(self) -> list[tuple[str, str]]:
        """Listing pages that failed or had no products: (url, reason); a feed's final
        empty page (status ``end``) is not a problem."""
        cur = self.db.execute("SELECT url, error FROM pages WHERE status NOT IN ('done', 'end')"
                              " ORDER BY url")
        return cur.fetchall()
