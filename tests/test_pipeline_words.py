"""The product's words and departments (issue 17): the rules hold for any shop's column
names and language, not one data set's. Synthetic catalogs whose answers are known: a
German department column, departments only in titles, Unisex, a department too small for
k, a bare folder without words, non-Latin, long and empty titles, and colour words found
without a list."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import BuildOptions, build
from pipeline.departments import (
    UNISEX,
    compatible,
    department_of_text,
    find_department_source,
    product_departments,
)
from pipeline.precomputed import read_precomputed
from pipeline.text import MAX_TEXT_CHARS, colour_words, product_text, text_vectors
from tests.pipeline_helpers import draw_product
from tests.test_pipeline_rows import shape_extractor

SHAPES = ("square", "disc", "bar")
COLOURS = ("red", "blue", "green", "yellow")


@pytest.mark.parametrize("value,dept", [
    ("Men", "men"), ("Women's", "women"), ("Herren", "men"), ("Damen", "women"),
    ("Femme", "women"), ("Hombre", "men"), ("Mädchen", "girls"), ("Garçons", "boys"),
    ("Unisex", UNISEX), ("Herren/Damen", UNISEX), ("Men & Women", UNISEX),
    ("Boys & Girls", "kids"), ("Kinder", "kids"), ("Baby", "baby"), ("Shoes", None),
    ("", None), (None, None),
])
def test_department_words_in_several_languages(value, dept):
    assert department_of_text(value, whole=True) == dept


def test_compatible_departments():
    assert compatible("men", "men") and compatible("men", UNISEX) and compatible(None, "women")
    assert not compatible("men", "women") and not compatible("boys", "men")
    assert compatible("kids", "girls") and not compatible("kids", "women")


def test_the_department_column_is_found_by_its_values_not_its_name():
    titles = ["Leichte Jacke", "Sneaker", "Rock", "Hemd", "Tasche"]
    attrs = [{"Abteilung": v, "Saison": s, "Art": a} for v, s, a in [
        ("Herren", "Sommer", "Jacke"), ("Damen", "Winter", "Schuh"), ("Damen", "Sommer", "Rock"),
        ("Herren", "Winter", "Hemd"), ("Unisex", "Sommer", "Tasche")]]
    source = find_department_source(titles, attrs)
    assert source is not None and source.kind == "column" and source.column == "Abteilung"
    assert product_departments(titles, attrs, source) == ["men", "women", "women", "men", UNISEX]
    # no such column: the titles say it ("all" in a title is not "for everyone")
    titles = ["Nike All Star Men Shoe", "Women Dress", "Kids T-shirt", "Ladies Top", "Bag"]
    source = find_department_source(titles, [{} for _ in titles])
    assert source is not None and source.kind == "title"
    assert product_departments(titles, [{}] * 5, source) == ["men", "women", "kids", "women",
                                                             None]
    # a catalog that does not say: no departments
    assert find_department_source(["Red mug", "Blue cup"], [{}, {}]) is None


def test_words_from_title_and_attributes_not_numbers():
    text = product_text("Slim Jeans", {"year": "2011", "colour": "Blue", "size": "42",
                                       "fit": "Slim"})
    assert text == "Slim Jeans Blue Slim"
    assert len(product_text("x" * 10_000, {"a": "y" * 5_000})) == MAX_TEXT_CHARS
    assert product_text(None, {}) == ""


def test_text_vectors_match_spellings_and_any_script():
    texts = ["Cotton T-shirt", "cotton tshirt", "Tshirts cotton", "Leather boots",
             "leather boot", "革のブーツ", "革のブーツ 黒", "Φόρεμα", "Φόρεμα κόκκινο", "",
             "Leather bag"]
    x = text_vectors(texts, dims=8)
    assert x is not None and x.shape == (len(texts), 8) and x.dtype == np.float32
    sim = x @ x.T
    assert min(sim[0, 1], sim[0, 2]) > max(sim[0, 3:]) + 0.2  # T-shirt, tshirt, Tshirts
    assert sim[5, 6] > max(sim[5, :5].max(), sim[5, 7:].max()) + 0.2  # Japanese
    assert sim[7, 8] > max(sim[7, :7].max(), sim[7, 9:].max()) + 0.2  # Greek
    assert not x[9].any()  # no words: no similarity to anything
    assert text_vectors(["", "", ""]) is None


def test_colour_words_are_the_words_whose_products_share_a_colour():
    rng = np.random.default_rng(0)
    n = 240
    colour_of = rng.integers(0, 3, n)
    shape_of = rng.integers(0, 3, n)
    colour = np.eye(3)[colour_of] + rng.normal(0, 0.05, (n, 3))
    shape = np.eye(3)[shape_of] + rng.normal(0, 0.05, (n, 3))
    colour -= colour.mean(axis=0)
    colour /= np.linalg.norm(colour, axis=1, keepdims=True)
    shape /= np.linalg.norm(shape, axis=1, keepdims=True)
    texts = [f"{['rot', 'blau', 'grün'][c]} {['kleid', 'hose', 'mantel'][s]} marke"
             for c, s in zip(colour_of, shape_of, strict=True)]
    assert colour_words(texts, colour.astype(np.float32), shape.astype(np.float32)) == [
        "blau", "grün", "rot"]


def _catalog(folder: Path, department: dict[str, str] | None, titled: bool = True) -> Path:
    """4 colours x 3 shapes x 4 variants; `department`: variant -> value of 'Abteilung'."""
    images = folder / "images"
    images.mkdir(parents=True)
    rows = []
    for colour in COLOURS:
        for shape in SHAPES:
            for v in range(4):
                pid = f"{colour}-{shape}-{v}"
                draw_product(colour, shape, v).save(images / f"{pid}.jpg", quality=95)
                row = {"id": pid, "image": f"images/{pid}.jpg",
                       "title": f"{colour} {shape}" if titled else ""}
                if department:
                    row["Abteilung"] = department[str(v)]
                rows.append(row)
    with open(folder / "catalog.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return folder


def _build(catalog: Path, out: Path, **options) -> Path:
    build(BuildOptions(catalog=catalog, out=out, k=4, cache_dir=out.parent / "cache",
                       progress=False, **options), extractor=shape_extractor())
    return out


def test_recommendations_stay_in_the_department_unisex_goes_with_either(tmp_path: Path):
    depts = {"0": "Herren", "1": "Damen", "2": "Herren", "3": "Unisex"}
    out = _build(_catalog(tmp_path / "cat", depts), tmp_path / "pre")
    pre = read_precomputed(out)
    assert pre.meta["department"] == {"source": "column", "column": "Abteilung",
                                      "coverage": 1.0}
    of = {p["id"]: department_of_text(p["attrs"]["Abteilung"], whole=True)
          for p in pre.products}
    for row in pre.rows.values():
        for pid, cards in row.items():
            assert all(compatible(of[pid], of[n]) for n, _ in cards), pid
    # a Unisex product is recommended to both departments
    unisex = {n for row in pre.rows.values() for pid, cards in row.items()
              if of[pid] in ("men", "women") for n, _ in cards if of[n] == UNISEX}
    assert unisex
    # --department none: the visual rows cross departments (the variants are shifted
    # copies, so men's and women's squares of one colour look alike)
    free = read_precomputed(_build(tmp_path / "cat", tmp_path / "free", department="none"))
    assert free.meta["department"] is None
    crossed = sum(not compatible(of[pid], of[n]) for pid, cards in free.neighbours.items()
                  for n, _ in cards)
    assert crossed > 0


def test_a_department_with_too_few_products_is_filled_from_others(tmp_path: Path):
    depts = {"0": "Men", "1": "Men", "2": "Men", "3": "Men"}
    catalog = _catalog(tmp_path / "cat", depts)
    with open(catalog / "catalog.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows[0]["Abteilung"] = rows[1]["Abteilung"] = "Women"  # two women's products
    with open(catalog / "catalog.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    pre = read_precomputed(_build(catalog, tmp_path / "pre"))
    women = [r["id"] for r in rows[:2]]
    for pid in women:
        cards = [n for n, _ in pre.neighbours[pid]]
        assert len(cards) == 4 and cards[0] == ({*women} - {pid}).pop()  # own first


def test_a_catalog_without_words_gets_visual_rows(tmp_path: Path):
    images = tmp_path / "photos"
    images.mkdir()
    for colour in COLOURS:
        for shape in SHAPES:
            draw_product(colour, shape).save(images / f"{colour}-{shape}.jpg")
    pre = read_precomputed(_build(images, tmp_path / "pre"))
    assert pre.meta["text"] is None and pre.meta["department"] is None
    assert all(r["weights"]["text"] == 0 for r in pre.meta["rows"])
    # and so does one with empty titles, or --text-weight 0 --other-text-weight 0
    empty = read_precomputed(_build(_catalog(tmp_path / "c2", None, titled=False),
                                    tmp_path / "p2"))
    assert empty.meta["text"] is None
    visual = read_precomputed(_build(tmp_path / "c2", tmp_path / "p3", text_weight=0.0,
                                     other_text_weight=0.0))
    assert visual.meta["text"] is None
    assert json.loads((tmp_path / "p3" / "neighbours.json").read_text()) == json.loads(
        (tmp_path / "p2" / "neighbours.json").read_text())


def test_words_change_the_rows_and_are_recorded(tmp_path: Path):
    pre = read_precomputed(_build(_catalog(tmp_path / "cat", None), tmp_path / "pre"))
    text = pre.meta["text"]
    assert text["dims"] >= 1 and text["with_words"] == 1.0
    similar, other = pre.meta["rows"]
    assert similar["weights"]["text"] > 0 and similar["weights"]["colour_words"] > 0
    assert other["weights"]["text"] > 0 and other["weights"]["colour_words"] == 0
    assert other["exclude_row"] == "similar"
    assert text["colour_words"] == sorted(COLOURS)  # found from the photos, no list
    # "Looks like this": the model sees shapes only; with the colour in the title the
    # first card shares both colour and shape, and the title's colour outweighs a shifted
    # copy in another colour for most products
    same = 0
    for pid, cards in pre.neighbours.items():
        assert cards[0][0].split("-")[:2] == pid.split("-")[:2], pid
        same += cards[1][0].split("-")[0] == pid.split("-")[0]
    assert same >= 0.75 * len(pre.neighbours)
    # "other colours": words without colour words, so the shape named in the title leads
    for pid, cards in pre.rows["other_colours"].items():
        assert all(n.split("-")[0] != pid.split("-")[0] for n, _ in cards), pid
        assert cards[0][0].split("-")[1] == pid.split("-")[1], pid
