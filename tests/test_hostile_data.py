"""Hostile data (issue 22): long words and fields, huge CSV lines, planted indexes, odd ids,
and searches built to be slow. Each test failed on the code before its fix."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline.catalog import (
    MAX_ATTRIBUTE_CHARS,
    MAX_CSV_LINE_CHARS,
    MAX_TITLE_CHARS,
    CatalogError,
    read_catalog,
)
from pipeline.precomputed import PrecomputedError
from pipeline.shop_index import derive_shop_index, search_words, searchable_text
from scraper.local_import import import_folder
from shopfront.query import CatalogQuery
from shopfront.shop import Shop, index_path_for
from tests.fake_precomputed import make_fake_precomputed

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter from the repository root (own memory, own clock)."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def write_catalog_csv(folder: Path, rows: list[dict[str, str]]) -> Path:
    """A catalog folder with `rows` (each with a real 8x8 PNG) as catalog.csv."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with (folder / "catalog.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            Image.new("RGB", (8, 8), (200, 30, 30)).save(folder / row["image"])
            writer.writerow(row)
    return folder


# ----------------------------------------------------------------------------- long words


def test_index_text_of_a_very_long_word_is_linear() -> None:
    # The compound-word regex backtracked over the whole word from every position:
    # 5,000 characters 0.39 s, 40,000 23.5 s; 400,000 would take about 40 minutes.
    code = ("from pipeline.shop_index import searchable_text, search_words\n"
            "word = 'a' * 400_000\n"
            "assert searchable_text(word + ' tops') == word + ' tops top'\n"
            "assert search_words('x-' + word + ' T-shirt') == ['x' + word, 'tshirt']\n")
    done = run_python(code, timeout=30)  # linear: well under a second
    assert done.returncode == 0, done.stderr


def test_deriving_an_index_with_a_very_long_title_is_linear(tmp_path: Path) -> None:
    # products.json written by hand is not capped: the app derives its index at start-up
    folder = make_fake_precomputed(tmp_path / "shop", 30, k=2)
    products = json.loads((folder / "products.json").read_text(encoding="utf-8"))
    products[0]["title"] = "z" * 400_000 + " tops"
    products[1]["title"] = "y" + "z" * 400_000 + " T-shirt"
    (folder / "products.json").write_text(json.dumps(products), encoding="utf-8")
    code = ("import pipeline.shop_index as si\n"
            "si.DENSE_MIN_ROWS = 1  # every word gets stored sets, the long ones too\n"
            f"si.derive_shop_index({str(folder)!r}, {str(tmp_path / 'index.sqlite')!r})\n")
    done = run_python(code, timeout=60)  # linear: about a second
    assert done.returncode == 0, done.stderr
    shop = Shop(folder, index=tmp_path / "index.sqlite")
    assert shop.word_sets.stored_forms()
    assert page_of(shop, CatalogQuery(q="z" * 40 + " top"))[2] == [products[0]["id"]]
    assert page_of(shop, CatalogQuery(q="yzzz tshirt"))[2] == [products[1]["id"]]


def test_compounds_and_plurals_are_still_indexed() -> None:
    # what the index held before the regex was made linear
    assert searchable_text("Red T-shirts") == "Red T-shirts tshirts shirt tshirt"
    assert searchable_text("Women's Tops") == "Women's Tops womens top women"
    assert searchable_text("a-b--c-d e‐f") == "a-b--c-d e‐f ab cd ef"
    assert searchable_text("x_y-z ab- -ab-cd-") == "x_y-z ab- -ab-cd- yz abcd"
    assert search_words("T-shirt rock'n'roll, x_y") == ["tshirt", "rocknroll", "x", "y"]


def test_pipeline_caps_titles_and_attributes_as_the_scraper_does(tmp_path: Path) -> None:
    huge_title = "Long " + "w" * 300_000  # a 300 KB title, one 300,000-character word
    folder = write_catalog_csv(tmp_path / "cat", [
        {"id": "a1", "image": "images/a1.png", "title": huge_title, "notes": "n" * 40_000},
        {"id": "a2", "image": "images/a2.png", "title": "Short", "notes": "fine"},
    ])
    rows = {r.id: r for r in read_catalog(folder)}
    assert len(rows["a1"].title or "") <= MAX_TITLE_CHARS and rows["a1"].title.endswith("…")
    assert len(rows["a1"].attrs["notes"]) <= MAX_ATTRIBUTE_CHARS
    assert rows["a2"].title == "Short" and rows["a2"].attrs["notes"] == "fine"


# ----------------------------------------------------------------------------- CSV lines


def sparse_csv(path: Path, header: str, first: str, size: int) -> Path:
    """A CSV whose second line is `first` followed by `size` bytes of NULs and no newline:
    a sparse file, so the disk holds almost nothing."""
    with path.open("wb") as fh:
        fh.write(f"{header}\n{first}".encode())
        fh.truncate(fh.tell() + size)
    return path


# the child's own peak (VmHWM starts again at exec; ru_maxrss keeps the forking parent's)
PEAK_RSS = ("hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print('peak', int(hwm.split()[1]) // 1024)\n")


def peak_mib(out: str) -> int:
    return next(int(line.split()[1]) for line in out.splitlines() if line.startswith("peak"))


def test_a_huge_csv_line_is_refused_without_reading_it(tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    folder.mkdir()
    sparse_csv(folder / "catalog.csv", "id,image,title", "a1,images/a1.png,", 300 * MiB)
    done = run_python(
        "from pipeline.catalog import read_catalog, CatalogError\n"
        f"try:\n    read_catalog({str(folder)!r})\n"
        "except CatalogError as e:\n    print('error:', e)\n" + PEAK_RSS)
    assert done.returncode == 0, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "catalog.csv line 2" in errors[0], done.stdout
    assert peak_mib(done.stdout) < 120, done.stdout  # was 2x the line: 600+ MiB


def test_scraper_import_refuses_a_huge_metadata_line(tmp_path: Path) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "a1.png")
    meta = sparse_csv(tmp_path / "styles.csv", "id,title", "a1,", 300 * MiB)
    done = run_python(
        "from scraper import ScraperError\n"
        "from scraper.local_import import import_folder\n"
        f"try:\n    import_folder({str(images)!r}, {str(tmp_path / 'out')!r}, "
        f"metadata={str(meta)!r}, progress=False)\n"
        "except ScraperError as e:\n    print('error:', e)\n" + PEAK_RSS)
    assert done.returncode == 0, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "styles.csv line 2" in errors[0], done.stdout
    assert peak_mib(done.stdout) < 150, done.stdout


def test_a_record_of_many_short_lines_is_capped_too(tmp_path: Path) -> None:
    # one quoted field of many short lines: each line is small, the record is not
    folder = tmp_path / "cat"
    folder.mkdir()
    n_lines = MAX_CSV_LINE_CHARS // 10 + 10
    with (folder / "catalog.csv").open("w", encoding="utf-8") as fh:
        fh.write('id,image,title\na1,images/a1.png,"')
        fh.writelines("123456789\n" for _ in range(n_lines))
        fh.write('"\n')
    with pytest.raises(CatalogError, match=r"catalog\.csv line 2\b") as err:
        read_catalog(folder)
    assert "\n" not in str(err.value)


def test_lines_under_the_cap_are_read_whole(tmp_path: Path) -> None:
    title = "Dress " + "x" * (MAX_CSV_LINE_CHARS // 2)  # long, under the line cap
    folder = write_catalog_csv(tmp_path / "cat", [
        {"id": "a1", "image": "images/a1.png", "title": title},
        {"id": "a2", "image": "images/a2.png", "title": 'Quoted "multi\nline"'},
    ])
    rows = {r.id: r for r in read_catalog(folder)}
    assert rows["a1"].title.startswith("Dress x") and rows["a2"].title == 'Quoted "multi\nline"'


def test_garbage_metadata_rows_are_counted_not_kept(tmp_path: Path) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "real.png")
    meta = tmp_path / "styles.csv"
    with meta.open("w", encoding="utf-8") as fh:
        fh.write("id,title,colour\nreal,Real one,Red\n")
        fh.writelines(f"Ünïcode-{i:06d},garbage {i},x{i}\n" for i in range(3000))
    summary = import_folder(images, tmp_path / "out", metadata=meta, progress=False,
                            say=lambda m: None)
    assert summary.rows == 1 and sum(summary.skipped.values()) == 3000
    # one reason for all of them, not one per id (the summary printed 3,000 lines)
    assert list(summary.skipped) == ["no image file named <id>.<ext>"]


# ----------------------------------------------------------------------------- ids


@pytest.mark.parametrize("bad", [".", ".."])
def test_dot_ids_are_refused_by_the_pipeline(tmp_path: Path, bad: str) -> None:
    folder = write_catalog_csv(tmp_path / "cat", [
        {"id": "a1", "image": "images/a1.png", "title": "One"},
        {"id": bad, "image": "images/a2.png", "title": "Dots"},
    ])
    with pytest.raises(CatalogError, match=r"catalog\.csv line 3: id '\.{1,2}'") as err:
        read_catalog(folder)
    assert "\n" not in str(err.value)
    # a metadata CSV (ids made safe, not checked) refuses them the same way
    meta = tmp_path / "styles.csv"
    meta.write_text(f"id,title\na1,One\n{bad},Dots\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"styles\.csv line 3: id '\.{1,2}'"):
        read_catalog(folder / "images", meta)


def test_scraper_import_never_writes_dot_ids(tmp_path: Path) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    for name in ("a1", "dots"):
        Image.new("RGB", (8, 8)).save(images / f"{name}.png")
    meta = tmp_path / "styles.csv"
    meta.write_text("id,title,file\na1,One,a1.png\n.,Dot,dots.png\n..,Dots,dots.png\n"
                    "...,More,dots.png\n", encoding="utf-8")
    summary = import_folder(images, tmp_path / "out", metadata=meta, image_column="file",
                            progress=False, say=lambda m: None)
    assert summary.rows == 1 and sum(summary.skipped.values()) == 3
    assert [r.id for r in read_catalog(tmp_path / "out")] == ["a1"]


# ----------------------------------------------------------------------------- planted index


def read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "old"
                     ) -> Path:
    """A folder without shop.sqlite that the app may not write (as os.access says)."""
    folder = make_fake_precomputed(tmp_path / name, 20, k=3)
    (folder / "shop.sqlite").unlink()
    monkeypatch.setattr("shopfront.shop.os.access", lambda path, mode: False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return folder


def test_derived_index_lives_in_a_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = read_only_folder(tmp_path, monkeypatch)
    shop = Shop(folder)
    assert shop.n_products == 20 and not (folder / "shop.sqlite").exists()
    private = shop.index_path.parent
    info = private.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert private.parent == tmp_path / "tmp"
    assert Shop(folder).index_path == shop.index_path  # derived once, then reused


def test_a_planted_index_with_matching_sizes_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = read_only_folder(tmp_path, monkeypatch)
    products = json.loads((folder / "products.json").read_text(encoding="utf-8"))
    real = products[1]["title"]
    # same meta.json, same file sizes, another title: a size signature cannot tell
    planted_from = tmp_path / "planted"
    planted_from.mkdir()
    for name in os.listdir(folder):
        if name.endswith(".json"):
            (planted_from / name).write_bytes((folder / name).read_bytes())
    text = (planted_from / "products.json").read_text(encoding="utf-8")
    fake = ("PLANTED " + real)[: len(real)]
    (planted_from / "products.json").write_text(text.replace(json.dumps(real), json.dumps(fake)),
                                                encoding="utf-8")
    assert (planted_from / "products.json").stat().st_size == (folder / "products.json").stat(
    ).st_size
    target = index_path_for(folder)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    derive_shop_index(planted_from, target)
    shop = Shop(folder)
    assert shop.item(products[1]["id"]).title == real


@pytest.mark.parametrize("attack", ["world-writable", "symlink", "other-owner"])
def test_an_unsafe_index_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attack: str
) -> None:
    folder = read_only_folder(tmp_path, monkeypatch)
    private = tmp_path / "tmp" / f"lookalike-{os.getuid()}"  # as another user would plant it
    if attack == "world-writable":
        private.mkdir()
        private.chmod(0o777)
    elif attack == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        private.symlink_to(elsewhere)
    else:
        if os.getuid() != 0:
            pytest.skip("needs root to give a directory to another user")
        private.mkdir(mode=0o700)
        os.chown(private, 65534, 65534)
    with pytest.raises(PrecomputedError, match="not a private directory") as err:
        Shop(folder)
    assert "\n" not in str(err.value) and str(private) in str(err.value)


# ----------------------------------------------------------------------------- slow searches


class RecordingConnection:
    """An SQLite connection that records the FTS5 MATCH expressions it runs."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con, self.matches = con, []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if "MATCH" in sql:
            self.matches.append(next(p for p in params if isinstance(p, str)))
        return self.con.execute(sql, params)

    def close(self) -> None:
        self.con.close()


def recorded_request(shop: Shop, query: CatalogQuery) -> list[str]:
    """The MATCH expressions one catalog request runs (its page, then its filter counts),
    on a fresh thread as a web worker would serve it."""
    found: list[str] = []

    def serve() -> None:
        shop._connection()
        spy = RecordingConnection(shop._local.con)
        shop._local.con = spy
        shop.matching(query, 24)
        shop.facet_counts(query)
        found.extend(spy.matches)

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join()
    return found


EVERY_GENDER = (("gender", ("Men", "Women", "Unisex")),)


def page_of(shop: Shop, query: CatalogQuery) -> tuple[int, int, list[str]]:
    total, page, items = shop.matching(query, 7)
    return total, page, [item.id for item in items]


def test_repeated_short_words_are_expanded_once(fake_folder: Path) -> None:
    # 12 times "b" with every gender: each tier and each count expanded every "b" again
    shop = Shop(fake_folder)
    matches = recorded_request(shop, CatalogQuery(q=" ".join(["b"] * 12), filters=EVERY_GENDER))
    assert matches, "small folders resolve words through FTS5"
    assert sum(m.count('"b"*') for m in matches) <= 2  # title, and title or attributes
    assert len(matches) <= 4  # one query per kind of row set, for all words together


def test_distinct_words_cost_one_query_per_kind(fake_folder: Path) -> None:
    shop = Shop(fake_folder)
    q = "p r w 1 pr re wa wo premium red watches women"  # all of product p001's words
    query = CatalogQuery(q=q, filters=EVERY_GENDER)
    assert "p001" in page_of(shop, query)[2]
    matches = recorded_request(shop, query)
    assert len(matches) <= 4
    for word in q.split():
        assert sum(m.count(f'"{word}"*') for m in matches) <= 2


def dense_index_shop(folder: Path, dense_rows: int, monkeypatch: pytest.MonkeyPatch,
                     name: str) -> Shop:
    """A Shop on an index whose words of at least `dense_rows` products have stored sets."""
    monkeypatch.setattr("pipeline.shop_index.DENSE_MIN_ROWS", dense_rows)
    monkeypatch.setattr("pipeline.shop_index.DENSE_FRACTION", 10**9)
    index = derive_shop_index(folder, folder.parent / f"{name}.sqlite")
    monkeypatch.undo()
    return Shop(folder, index=index)


SEARCHES = ["red", "b", "b b b b", "s b c d e g h m p r t w", "1 2 3", "shirts", "tshirt",
            "t-shirt", "red top", "classic black", "men", "women watches", "réd", "zzz",
            "Ünï", "e x", "p1", "wat w"]


def test_stored_sets_give_what_fts5_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_fake_precomputed(tmp_path / "shop", 400, k=2)
    plain = Shop(folder)  # 400 products: no word has stored sets
    stored = dense_index_shop(folder, 1, monkeypatch, "all")  # every word has
    mixed = dense_index_shop(folder, 25, monkeypatch, "some")
    assert not plain.word_sets.stored_forms() and stored.word_sets.stored_forms()
    assert 0 < len(mixed.word_sets.stored_forms()) < len(stored.word_sets.stored_forms())
    for q in SEARCHES:
        for filters in ((), EVERY_GENDER, (("gender", ("Men",)), ("baseColour", ("Red",)))):
            for sort in ("featured", "price-asc", "title"):
                for page in (1, 3):
                    query = CatalogQuery(q=q, filters=filters, sort=sort, page=page)
                    want = page_of(plain, query), plain.facet_counts(query)
                    for shop in (stored, mixed):
                        got = page_of(shop, query), shop.facet_counts(query)
                        assert got == want, (q, filters, sort, page)


def test_short_words_of_many_products_read_no_fts5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_fake_precomputed(tmp_path / "shop", 400, k=2)
    shop = dense_index_shop(folder, 20, monkeypatch, "dense")
    query = CatalogQuery(q="b b b s c m r w", filters=EVERY_GENDER, sort="price-asc", page=2)
    assert recorded_request(shop, query) == []
