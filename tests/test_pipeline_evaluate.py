"""`python -m pipeline evaluate` (issue 17, item 5): precision@k by label, cards in another
department, kind or colour, overlap between rows, shape likeness kept, the contact sheet.

Small precomputed folders are written by hand, so every measure has a known answer
worked out in the comments. The column names and values are German on purpose: the
rules that pick the label, kind, colour and department columns know no column names.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline import evaluate as ev
from pipeline.contact_sheet import sample_products, thumbnail_src
from pipeline.evaluate import (
    EvaluationError,
    colour_columns,
    evaluate,
    evaluate_folder,
    evaluate_rows,
    format_folder_report,
    format_report,
    kind_column,
    label_columns,
    top_k_scores,
    visual_top_k_means,
)
from pipeline.precomputed import read_precomputed

REPO = Path(__file__).resolve().parent.parent
MARKUP_TITLE = '<b>Herren</b> Hemd & "Rot" <script>x</script>'

# id: (Art = kind, Farbe = colour, Abteilung = department, Jahr, title)
# departments: p1 men, p2 women, p3 unisex, p4 unknown, p5 men, p6 women, p7 women, p8 men
TOY: dict[str, tuple[str, str, str, str, str]] = {
    "p1": ("Hemd", "Rot", "Herren", "2011", MARKUP_TITLE),
    "p2": ("Hemd", "Blau", "Damen", "2011", "Damen Hemd blau"),
    "p3": ("Hemd", "Rot", "Unisex", "2012", "Unisex Hemd rot"),
    "p4": ("Hemd", "Blau", "", "2012", "Hemd blau"),
    "p5": ("Schuh", "Rot", "Herren", "2011", "Herren Schuh rot"),
    "p6": ("Schuh", "Blau", "Damen", "2012", "Damen Schuh blau"),
    "p7": ("Schuh", "Rot", "Damen", "2011", "Damen Schuh rot"),
    "p8": ("Tasche", "Blau", "Herren", "2012", "Herren Tasche blau"),
}
SIMILAR = {
    "p1": ["p2", "p3", "p5"], "p2": ["p1", "p4", "p6"], "p3": ["p1", "p2", "p4"],
    "p4": ["p1", "p2", "p3"], "p5": ["p8", "p6", "p1"], "p6": ["p7", "p5", "p2"],
    "p7": ["p6", "p5", "p3"], "p8": ["p5", "p1", "p6"],
}
OTHER = {
    "p1": ["p2", "p4", "p6"], "p2": ["p1", "p3", "p5"], "p3": ["p4", "p2", "p1"],
    "p4": ["p3", "p1", "p5"], "p5": ["p6", "p2", "p1"], "p6": ["p5", "p7", "p8"],
    "p7": ["p6", "p4", "p8"], "p8": ["p7", "p5", "p3"],
}
# Of the 24 similar cards (3 per product):
# another department (men/women; unisex and unknown go with all): p1->p2, p2->p1, p5->p6,
#   p6->p5, p7->p5, p8->p6 = 6 -> 0.25
# another kind (Art): p1->p5, p2->p6, p5->p8, p5->p1, p6->p2, p7->p3, p8->p5, p8->p1, p8->p6
#   = 9 -> 0.375
# another colour (Farbe): 1+1+2+2+2+2+1+2 = 13 -> 13/24
# precision@2 on Art (queries: Hemd 4, Schuh 3; Tasche has 1 product): p5 gets [Tasche,
#   Schuh] = 0.5, the other six 1.0 -> 6.5/7; vote: p5's tie goes to Tasche -> 6/7
# other_colours shares with similar's 3 cards: 1, 1, 3, 2, 2, 2, 1, 1 = 13/8; with
#   --cards 1: p1, p2, p7 -> 3/8
SIMILAR_DEPT, SIMILAR_KIND, SIMILAR_COLOUR = 6 / 24, 9 / 24, 13 / 24
OVERLAP_3, OVERLAP_1 = 13 / 8, 3 / 8


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 32), colour).save(buf, "JPEG")
    return buf.getvalue()


def write_folder(
    folder: Path,
    products: list[dict[str, Any]],
    rows: dict[str, dict[str, list[str]]],
    k: int,
    meta_extra: dict[str, Any] | None = None,
    embeddings: np.ndarray | None = None,
    thumbs: bool = True,
    version: int = 2,
) -> Path:
    """A contract-2 folder (version 1: no `rows` in meta.json, only neighbours.json)."""
    folder.mkdir(parents=True)
    (folder / "thumbs").mkdir()
    files = {}
    for n, (key, found) in enumerate(rows.items()):
        files[key] = "neighbours.json" if n == 0 else f"neighbours-{key}.json"
        scored = {pid: [[nid, round(0.9 - 0.1 * i, 3)] for i, nid in enumerate(ids)]
                  for pid, ids in found.items()}
        (folder / files[key]).write_text(json.dumps(scored))
    meta: dict[str, Any] = {"schema_version": version, "n_products": len(products), "k": k,
                            "metric": "cosine", **(meta_extra or {})}
    if version == 2:
        meta["rows"] = [{"key": key, "title": key.replace("_", " ").title(), "file": file}
                        for key, file in files.items()]
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "products.json").write_text(json.dumps(products))
    if thumbs:
        for p in products:
            if (p.get("thumb") or "").startswith("thumbs/"):
                (folder / p["thumb"]).write_bytes(jpeg((200, 40, 40)))
    if embeddings is not None:
        np.save(folder / "embeddings.npy", embeddings.astype(np.float16))
    return folder


def toy_products(department_column: bool = True) -> list[dict[str, Any]]:
    out = []
    for pid, (art, farbe, abteilung, jahr, title) in TOY.items():
        attrs = {"Art": art, "Farbe": farbe, "Jahr": jahr, "sku": f"sku-{pid}"}
        if department_column:
            attrs["Abteilung"] = abteilung
        out.append({"id": pid, "title": title, "thumb": f"thumbs/{pid}.jpg",
                    "sha256": hashlib.sha256(pid.encode()).hexdigest(), "attrs": attrs})
    return out


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "toy", toy_products(),
                        {"similar": SIMILAR, "other_colours": OTHER}, k=3)


# ---------------------------------------------------------------- the rules


def test_label_kind_and_colour_columns_by_rule_not_by_name(toy: Path):
    products = read_precomputed(toy).products
    # Jahr is all numbers, sku unique per product: neither works as a label
    assert label_columns(products, k=2) == ["Abteilung", "Art", "Farbe"]
    # k=3 needs 4 products a value: only Farbe has two such values (Rot 4, Blau 4)
    assert label_columns(products, k=3) == ["Farbe"]
    assert colour_columns(products) == ["Farbe"]
    assert kind_column(products, ["Abteilung", "Art", "Farbe"], 2,
                       exclude=["Abteilung", "Farbe"]) == "Art"
    assert ev.names_colour("Navy Blue") and ev.names_colour("Weiß") and ev.names_colour("Off-White")
    assert not ev.names_colour("Tshirts") and not ev.names_colour("Herren")


def test_every_measure_has_its_known_answer(toy: Path):
    fe = evaluate_folder(toy, k=2)
    lab = fe.labelling
    assert (lab.labels, lab.kind, lab.colour) == (["Abteilung", "Art", "Farbe"], "Art", "Farbe")
    assert lab.department is not None and lab.department.column == "Abteilung"
    assert lab.department_how == "detected" and lab.department.coverage == pytest.approx(7 / 8)
    assert fe.cards == 3  # min(10, the folder's k)
    similar, other = fe.rows
    art = similar.labels["Art"]
    assert art.n_queries == 7
    assert art.precision_at_k == pytest.approx(6.5 / 7)
    assert art.vote_accuracy == pytest.approx(6 / 7)
    assert similar.shares.n_cards == 24
    assert similar.shares.other_department == pytest.approx(SIMILAR_DEPT)
    assert similar.shares.other_kind == pytest.approx(SIMILAR_KIND)
    assert similar.shares.other_colour == pytest.approx(SIMILAR_COLOUR)
    assert similar.shared_with_first is None
    assert other.shared_with_first == pytest.approx(OVERLAP_3)
    # worst kinds: Schuh (0.5 + 1 + 1) / 3 before Hemd 1.0
    assert [(r["label"], r["n"]) for r in similar.worst_kinds] == [("Schuh", 3), ("Hemd", 4)]
    assert similar.worst_kinds[0]["precision_at_k"] == pytest.approx(2.5 / 3)
    assert fe.likeness.skipped == "embeddings.npy absent" and similar.likeness_kept is None

    one = evaluate_folder(toy, k=2, cards=1, row="other_colours")
    assert [r.row for r in one.rows] == ["other_colours"]
    assert one.rows[0].shared_with_first == pytest.approx(OVERLAP_1)


def test_departments_from_titles_meta_json_or_the_command_line(tmp_path: Path, toy: Path):
    # no department column: the titles say Herren/Damen/Unisex (p4's says nothing)
    titles = write_folder(tmp_path / "titles", toy_products(department_column=False),
                          {"similar": SIMILAR}, k=3)
    fe = evaluate_folder(titles, k=2)
    assert fe.labelling.department is not None and fe.labelling.department.kind == "title"
    assert fe.rows[0].shares.other_department == pytest.approx(SIMILAR_DEPT)
    # meta.json's record wins over detection; null means the catalog has none
    recorded = {"source": "column", "column": "Abteilung", "coverage": 0.875}
    for name, value, expected in (("rec", recorded, SIMILAR_DEPT), ("null", None, None)):
        folder = write_folder(tmp_path / name, toy_products(), {"similar": SIMILAR}, k=3,
                              meta_extra={"department": value})
        fe = evaluate_folder(folder, k=2)
        assert fe.labelling.department_how == "meta.json"
        assert fe.rows[0].shares.other_department == (
            None if expected is None else pytest.approx(expected))
    off = evaluate_folder(toy, k=2, department="none")
    assert off.labelling.department is None and off.rows[0].shares.other_department is None
    # without departments Abteilung may be the kind: it ties with Art on 2 values of
    # >= 3 products, and Art's hold more products (7 against 6)
    assert off.labelling.kind == "Art"
    with pytest.raises(EvaluationError, match="none of its values names a department"):
        evaluate_folder(toy, k=2, department="Art")
    with pytest.raises(EvaluationError, match="--department 'Gender': no such attribute"):
        evaluate_folder(toy, k=2, department="Gender")


def test_kind_and_labels_from_the_command_line(toy: Path):
    as_colour = evaluate_folder(toy, k=2, kind="Farbe")
    assert as_colour.rows[0].shares.other_kind == pytest.approx(SIMILAR_COLOUR)
    first_label = evaluate_folder(toy, k=2, labels=["Farbe", "Art", "Farbe"])
    assert first_label.labelling.labels == ["Farbe", "Art"]
    assert first_label.labelling.kind == "Farbe" and first_label.primary == "Farbe"
    assert evaluate_folder(toy, k=2, kind="none").rows[0].shares.other_kind is None
    # an explicit label whose values are all too small is refused, as before
    with pytest.raises(EvaluationError, match="no label has 3 or more products"):
        evaluate_folder(toy, k=2, labels=["sku"])


def test_old_callers_get_what_they_got(toy: Path):
    e = evaluate(toy, "Art", k=2)
    assert (e.row, e.label, e.n_queries) == ("similar", "Art", 7)
    assert e.precision_at_k == pytest.approx(6.5 / 7)
    assert [x.row for x in evaluate_rows(toy, "Art", k=2)] == ["similar", "other_colours"]
    assert "precision@2: 0.929" in format_report(e)
    with pytest.raises(EvaluationError, match="no such attribute"):
        evaluate(toy, "colour", k=2)
    with pytest.raises(EvaluationError, match="holds only 3 neighbours"):
        evaluate(toy, "Art", k=4)


# ---------------------------------------------------------------- shape likeness


def likeness_folder(tmp_path: Path, rows: dict[str, dict[str, list[str]]]) -> Path:
    # e0=(1,0), e1=(.6,.8), e2=(0,1), e3=(1,0) the same photo as e0 (same sha256):
    # cosines 0-1 .6, 0-2 0, 1-2 .8, 1-3 .6, 2-3 0 (0-3 never counts)
    emb = np.array([[1, 0], [0.6, 0.8], [0, 1], [1, 0]])
    products = [{"id": f"q{i}", "title": f"Thing {i}", "thumb": None,
                 "sha256": "same" if i in (0, 3) else f"s{i}", "attrs": {}} for i in range(4)]
    return write_folder(tmp_path / "shapes", products, rows, k=2, embeddings=emb)


def test_visual_top_k_in_blocks_leaves_out_self_and_same_photos(monkeypatch):
    emb = np.array([[1, 0], [0.6, 0.8], [0, 1], [1, 0]], dtype=np.float32)
    sha = ["same", "s1", "s2", "same"]
    assert visual_top_k_means(emb, sha, 1) == pytest.approx([0.6, 0.8, 0.8, 0.6])
    monkeypatch.setattr(ev, "SCAN_FLOATS", 4)  # one row per block
    assert visual_top_k_means(emb, sha, 2) == pytest.approx([0.3, 0.7, 0.4, 0.3])
    # k above the others left: the mean of what is left; a lone product: NaN
    assert visual_top_k_means(emb, sha, 5)[0] == pytest.approx(0.3)
    assert np.isnan(visual_top_k_means(emb[:1], sha[:1], 2)).all()


def test_top_k_by_chunk_maxima_equals_a_full_sort():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((50, 3000)).astype(np.float32)
    scores[:, ::7] = 0.5  # ties across chunks
    scores[:5, 100:] = -np.inf  # rows with few finite values
    scores[5, :] = 0.25
    for k in (1, 5, 12):
        for width, chunk in ((3000, 64), (2999, 128)):  # a last chunk cut short
            part = scores[:, :width]
            expected = -np.sort(-part, axis=1)[:, :k]
            assert np.array_equal(top_k_scores(part, k, chunk=chunk), expected)


def test_shape_likeness_kept_is_the_ratio_of_the_two_means(tmp_path: Path):
    visual = {"q0": ["q1", "q2"], "q1": ["q2", "q0"], "q2": ["q1", "q0"], "q3": ["q1", "q2"]}
    # q0 gets one card (cosine 0), q1 (.6 + .6) / 2, q2 (0 + 0) / 2, q3 none: left out
    other = {"q0": ["q2"], "q1": ["q3", "q0"], "q2": ["q0", "q3"], "q3": []}
    folder = likeness_folder(tmp_path, {"similar": visual, "other": other})
    fe = evaluate_folder(folder, k=2)
    assert fe.likeness.visual_mean == pytest.approx((0.3 + 0.7 + 0.4 + 0.3) / 4, abs=1e-3)
    similar, other_row = fe.rows
    assert similar.likeness_kept == pytest.approx(1.0, abs=1e-6)
    # (0 + .6 + 0) / 3 over the same products' visual (.3 + .7 + .4) / 3
    assert other_row.shape_mean == pytest.approx(0.2, abs=1e-3)
    assert other_row.likeness_kept == pytest.approx(0.2 / (1.4 / 3), abs=2e-3)
    # a bare folder: no labels, no kind, no department, and the report still says so
    assert fe.labelling.labels == [] and fe.labelling.kind is None
    text = format_folder_report(fe)
    assert "labels: none" in text and "kind: none" in text and "department: none" in text
    assert "shape likeness kept: 1.000" in text


def test_shape_likeness_skips_unusable_embeddings(tmp_path: Path):
    visual = {"q0": ["q1"], "q1": ["q2"], "q2": ["q1"], "q3": ["q1"]}
    folder = likeness_folder(tmp_path, {"similar": visual})
    np.save(folder / "embeddings.npy", np.zeros((3, 2), dtype=np.float16))
    fe = evaluate_folder(folder, k=1)
    assert "not one row per product" in (fe.likeness.skipped or "")
    (folder / "embeddings.npy").write_bytes(b"not numpy")
    assert "unreadable" in (evaluate_folder(folder, k=1).likeness.skipped or "")


# ---------------------------------------------------------------- the contact sheet


class TagChecker(HTMLParser):
    """Collects text and checks that every non-void element is closed in order."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.sections = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag == "section":
            self.sections += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html_text: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(html_text)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    return checker


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "pipeline", "evaluate", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def test_sheet_shows_n_products_with_escaped_titles_and_marked_cards(toy: Path, tmp_path: Path):
    sheet = tmp_path / "sheet.html"
    r = run_cli(str(toy), "--k", "2", "--sheet", str(sheet), "--sheet-n", "8")
    assert r.returncode == 0, r.stderr
    assert f"contact sheet: 8 products -> {sheet}" in r.stdout
    text = sheet.read_text(encoding="utf-8")
    page = parse(text)
    assert page.sections == 8
    assert "<script>x</script>" not in text and "<b>Herren</b>" not in text
    assert "&lt;b&gt;Herren&lt;/b&gt; Hemd &amp; &quot;Rot&quot;" in text
    assert MARKUP_TITLE in "".join(page.text)  # shown as text
    # 8 query thumbnails and 8 x 2 rows x 3 cards, all embedded
    assert len(page.imgs) == 8 + 48
    assert all((img["src"] or "").startswith("data:image/jpeg;base64,") for img in page.imgs)
    # cards in another kind or department: 2+2+0+0+3+2+2+3 = 14 in similar (see the
    # comment at the top), 2+2+0+1+3+2+2+3 = 15 in other_colours
    assert text.count('class="card bad') == 14 + 15
    assert "other department" in text and "also in row 1" in text
    # the same seed draws the same products
    assert sample_products(list(TOY), 3, seed=0) == sample_products(list(TOY), 3, seed=0)
    assert len(sample_products(list(TOY), 20, seed=1)) == 8


def test_sheet_of_a_version_1_folder_with_missing_and_remote_thumbs(tmp_path: Path):
    products = toy_products()
    products[0]["thumb"] = "https://cdn.example/p1.jpg"  # no local file: linked
    products[1]["thumb"] = "../../etc/passwd"  # outside the folder: not read
    products[2]["thumb"] = None
    folder = write_folder(tmp_path / "v1", products, {"similar": SIMILAR}, k=3, version=1)
    (folder / "thumbs" / "p4.jpg").unlink()  # missing file
    pre = read_precomputed(folder)
    assert thumbnail_src(pre, products[0]) == "https://cdn.example/p1.jpg"
    assert thumbnail_src(pre, products[1]) is None and thumbnail_src(pre, products[2]) is None
    src = thumbnail_src(pre, products[4]) or ""
    assert base64.b64decode(src.split(",", 1)[1])[:2] == b"\xff\xd8"
    sheet = tmp_path / "v1.html"
    r = run_cli(str(folder), "--k", "2", "--sheet", str(sheet), "--sheet-n", "50",
                "--seed", "7")
    assert r.returncode == 0, r.stderr
    page = parse(sheet.read_text(encoding="utf-8"))
    assert page.sections == 8
    assert "no image" in "".join(page.text)
    assert any(img["src"] == "https://cdn.example/p1.jpg" for img in page.imgs)


# ---------------------------------------------------------------- the command line


def test_cli_report_per_label_and_json(toy: Path):
    r = run_cli(str(toy), "--k", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "row 'similar'" in out and "row 'other_colours'" in out
    assert "another department 25.0%; another kind 37.5%; another Farbe 54.2%" in out
    assert "cards also in row 'similar': 1.62 of 3 per product" in out
    assert "worst kinds (Art precision@2):\n    Schuh 0.83 (n=3), Hemd 1.00 (n=4)\n" in out
    assert "shape likeness: skipped, embeddings.npy absent" in out
    r = run_cli(str(toy), "--k", "2", "--per-label", "--row", "similar")
    assert "row 'other_colours'" not in r.stdout
    assert "worst kinds (Art, 2 with >= 3 products):" in r.stdout

    r = run_cli(str(toy), "--k", "2", "--json", "--label", "Art", "--label", "Farbe")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("label", "k", "n_queries", "row", "precision_at_k", "vote_accuracy",
                "per_label", "rows"):
        assert key in data
    assert (data["label"], data["row"], data["kind"]) == ("Art", "similar", "Art")
    assert data["precision_at_k"] == pytest.approx(6.5 / 7)
    assert data["department"]["column"] == "Abteilung"
    assert data["shape_likeness"]["skipped"] == "embeddings.npy absent"
    other = data["rows"]["other_colours"]
    assert other["shared_with_first"] == pytest.approx(OVERLAP_3)
    assert set(other["labels"]) == {"Art", "Farbe"} and other["cards"] == 3
    similar = data["rows"]["similar"]
    assert similar["other_department"] == pytest.approx(SIMILAR_DEPT)
    assert similar["other_kind"] == pytest.approx(SIMILAR_KIND)
    assert similar["worst_kinds"][0]["label"] == "Schuh"


def test_cli_bad_input_is_one_line(toy: Path, tmp_path: Path):
    empty = write_folder(tmp_path / "empty", [], {"similar": {}}, k=3)
    cases = [
        ((str(toy), "--k", "2", "--label", "colour"), "--label 'colour': no such attribute"),
        ((str(toy), "--k", "2", "--row", "nope"), "--row 'nope': no such row"),
        ((str(toy), "--k", "2", "--kind", "Typ"), "--kind 'Typ': no such attribute"),
        ((str(toy), "--k", "2", "--department", "Art"), "names a department"),
        ((str(toy), "--k", "4"), "holds only 3 neighbours"),
        ((str(toy), "--k", "2", "--cards", "4"), "--cards 4: must be from 1"),
        ((str(toy), "--k", "2", "--sheet", str(tmp_path / "x.html"), "--sheet-n", "0"),
         "--sheet-n 0"),
        ((str(toy), "--k", "2", "--sheet", str(tmp_path / "no" / "dir" / "x.html")),
         "cannot write"),
        ((str(empty),), "no products to evaluate"),
        ((str(tmp_path / "nowhere"),), "precomputed folder not found"),
    ]
    for args, message in cases:
        r = run_cli(*args)
        assert r.returncode == 1, (args, r.stdout)
        assert "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (
            args, r.stderr)
    assert not list(tmp_path.glob(".x.html.tmp-*"))
