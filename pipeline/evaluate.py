"""Offline quality of a precomputed folder's recommendation rows.

Per row: precision@k and vote accuracy by each label column, the share of shown cards
in another department, kind or colour, the cards a row shares with the first row, and
the shape likeness it keeps. `contact_sheet.py` draws the same judgements as HTML.

The rules that pick columns are the same for every shop (README, "Build
recommendations from a catalog"):

- a **label** is an attribute column with at least 2 values of k+1 or more products
  each, which together hold at least `LABEL_SHARE` of the products that have a value
  (so nearly unique columns are left out), and whose values are not all numbers;
- a **colour** column is one whose values name a colour (`COLOUR_WORDS`) for at least
  `COLOUR_SHARE` of the products that have a value;
- the **kind** is the first `--label`, else the label column with the most values of
  k+1 or more products (ties: the one those values hold more products of), leaving out
  the department and colour columns;
- the **department** is meta.json's `department`, else `departments.find_department_source`.

numpy is imported inside the shape-likeness scan only (the dynamic search imports
`majority_label` from here).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .departments import (
    DepartmentSource,
    compatible,
    find_department_source,
    product_departments,
)
from .precomputed import EMBEDDINGS_FILE, Precomputed, read_precomputed

if TYPE_CHECKING:
    import numpy as np

DEFAULT_K = 5
DEFAULT_CARDS = 10  # cards a shop front shows per row
LABEL_SHARE = 0.5  # of the valued products that a label's values of >= k+1 products hold
COLOUR_SHARE = 0.5  # of the valued products whose value must name a colour
WORST_SHOWN = 5  # worst kinds printed without --per-label
SCAN_FLOATS = 1 << 23  # scores held at once by the shape-likeness scan (32 MiB)
TOP_K_CHUNK = 128  # columns a row's top k are first looked for in (by chunk maxima)
OFF = "none"  # `--kind none`, `--department none`
OTHER_DEPARTMENT, OTHER_KIND = "other department", "other kind"  # why a card is marked

_COLOURS = (
    # English
    "black white red blue green yellow orange purple pink brown grey gray beige navy "
    "maroon olive silver gold golden cream khaki teal turquoise magenta lavender burgundy "
    "charcoal peach violet rust tan mustard coral copper bronze multi multicolour "
    "multicolor offwhite ivory nude taupe fuchsia lime mauve steel skin metallic "
    # German, French, Spanish, Italian, Dutch, Portuguese, Scandinavian, Polish
    "schwarz weiss rot blau grun gelb lila rosa braun grau silber bunt "
    "noir blanc rouge bleu vert jaune violet rose marron gris argent dore "
    "negro blanco rojo azul amarillo morado rosado plata dorado "
    "nero bianco rosso blu giallo viola marrone grigio argento oro "
    "zwart wit rood blauw groen geel paars roze bruin grijs zilver goud "
    "preto branco vermelho amarelo roxo cinza prata "
    "svart vit rod bla gron gul brun gra sort hvid hvit "
    "czarny bialy czerwony niebieski zielony zolty fioletowy rozowy brazowy szary"
)
COLOUR_WORDS = frozenset(_COLOURS.split())
_TOKEN = re.compile(r"[^\W\d_]+")


class EvaluationError(ValueError):
    """The evaluation cannot run (unknown label, k larger than the folder's k...)."""


@dataclass
class Evaluation:
    """precision@k and k-neighbour vote accuracy, overall and per label."""

    label: str
    k: int
    n_queries: int
    row: str
    precision_at_k: float
    vote_accuracy: float
    per_label: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for `--json`."""
        return asdict(self)


def majority_label(labels: list[str]) -> str | None:
    """Most common label; a tie goes to the label of the better-ranked neighbour."""
    if not labels:
        return None
    counts = Counter(labels)
    best = max(counts.values())
    return next(lab for lab in labels if counts[lab] == best)


def evaluate_neighbours(
    labels: dict[str, str], neighbours: dict[str, list[list[Any]]], k: int
) -> tuple[int, float, float, list[dict[str, Any]]]:
    """Score neighbour lists against labels.

    Queries are products whose (non-empty) label has at least k+1 products. precision@k is
    the mean share of their first k neighbours with the same label; vote accuracy is the
    share of queries whose k-neighbour majority label is their own.
    """
    sizes = Counter(v for v in labels.values() if v)
    per: dict[str, list[float]] = {}
    hits_total = votes_total = 0.0
    n = 0
    for pid, label in sorted(labels.items()):
        if not label or sizes[label] < k + 1:
            continue
        top = [labels.get(nid, "") for nid, _ in neighbours.get(pid, [])[:k]]
        prec = sum(1 for t in top if t == label) / k
        vote = 1.0 if majority_label(top) == label else 0.0
        per.setdefault(label, [0.0, 0.0, 0.0])
        per[label][0] += 1
        per[label][1] += prec
        per[label][2] += vote
        hits_total += prec
        votes_total += vote
        n += 1
    rows = [
        {"label": lab, "n": int(c), "precision_at_k": p / c, "vote_accuracy": v / c}
        for lab, (c, p, v) in per.items()
    ]
    rows.sort(key=lambda r: (r["precision_at_k"], -r["n"], r["label"]))
    if n == 0:
        return 0, 0.0, 0.0, rows
    return n, hits_total / n, votes_total / n, rows


def evaluate(folder: str | Path, label: str, k: int = 5, row: str = "similar") -> Evaluation:
    """Evaluate one row of a precomputed folder against the attribute `label`."""
    return evaluate_rows(folder, label, k, row)[0]


def evaluate_rows(
    folder: str | Path, label: str, k: int = 5, row: str | None = None
) -> list[Evaluation]:
    """Evaluate every row of a precomputed folder (or only `row`) against `label`."""
    pre = read_precomputed(folder)
    _check_row_and_k(pre, row, k)
    _check_columns(pre.products, [label], "--label")
    labels = {p["id"]: attr(p, label) for p in pre.products}
    out = []
    for key, neighbours in pre.rows.items():
        if row is not None and key != row:
            continue
        out.append(_label_evaluation(labels, neighbours, label, k, key))
    return out


def _label_evaluation(
    labels: dict[str, str], neighbours: dict[str, list[list[Any]]], label: str, k: int, row: str
) -> Evaluation:
    n, prec, vote, per = evaluate_neighbours(labels, neighbours, k)
    if n == 0:
        raise EvaluationError(f"--label {label!r}: no label has {k + 1} or more products")
    return Evaluation(label, k, n, row, prec, vote, per)


def _check_row_and_k(pre: Precomputed, row: str | None, k: int) -> None:
    if not pre.products:
        raise EvaluationError(f"{pre.folder}: no products to evaluate")
    if row is not None and row not in pre.rows:
        raise EvaluationError(f"--row {row!r}: no such row (rows: {', '.join(pre.rows)})")
    if k < 1:
        raise EvaluationError(f"--k {k}: must be at least 1")
    if k > int(pre.meta.get("k", 0)):
        raise EvaluationError(
            f"--k {k}: the folder holds only {pre.meta.get('k')} neighbours per product; "
            "rebuild with a larger --k"
        )


def _check_columns(products: list[dict[str, Any]], columns: Sequence[str], option: str) -> None:
    known = {a for p in products for a in p.get("attrs") or {}}
    for column in columns:
        if column not in known:
            raise EvaluationError(
                f"{option} {column!r}: no such attribute "
                f"(attributes: {', '.join(sorted(known)) or 'none'})"
            )


def format_report(ev: Evaluation, worst: int = 10) -> str:
    """Human-readable evaluation report."""
    lines = [
        f"row {ev.row!r}: label {ev.label!r}, k={ev.k}, {ev.n_queries} queries "
        f"(labels with >= {ev.k + 1} products)",
        f"precision@{ev.k}: {ev.precision_at_k:.3f}",
        f"{ev.k}-neighbour vote accuracy: {ev.vote_accuracy:.3f}",
        f"worst labels (of {len(ev.per_label)}):",
    ]
    for r in ev.per_label[:worst]:
        lines.append(
            f"  {r['label']:<28} n={r['n']:<5} precision={r['precision_at_k']:.3f} "
            f"vote={r['vote_accuracy']:.3f}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- which columns say what


def attr(product: dict[str, Any], column: str) -> str:
    """A product's value of an attribute column as text ("" when missing)."""
    value = (product.get("attrs") or {}).get(column)
    return "" if value is None or value == "" else str(value)


def _value_counts(products: list[dict[str, Any]], column: str) -> Counter[str]:
    return Counter(v for v in (attr(p, column) for p in products) if v.strip())


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def label_columns(products: list[dict[str, Any]], k: int) -> list[str]:
    """The attribute columns that work as labels for precision@k (the module's rule)."""
    found = []
    for column in sorted({a for p in products for a in p.get("attrs") or {}}):
        counts = _value_counts(products, column)
        big = [c for c in counts.values() if c >= k + 1]
        if (len(big) >= 2 and sum(big) >= LABEL_SHARE * sum(counts.values())
                and not all(_is_number(v) for v in counts)):
            found.append(column)
    return found


def names_colour(text: str) -> bool:
    """Whether a value names a colour ("Navy Blue", "Schwarz", "Off White")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("-", ""))
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return any(w in COLOUR_WORDS for w in _TOKEN.findall(folded.replace("ß", "ss")))


def colour_columns(products: list[dict[str, Any]]) -> list[str]:
    """Attribute columns whose values name colours, the most filled first."""
    found = []
    for column in sorted({a for p in products for a in p.get("attrs") or {}}):
        counts = _value_counts(products, column)
        total = sum(counts.values())
        named = sum(c for v, c in counts.items() if names_colour(v))
        if total and named >= COLOUR_SHARE * total:
            found.append((-total, column))
    return [column for _, column in sorted(found)]


def kind_column(
    products: list[dict[str, Any]], labels: Sequence[str], k: int, exclude: Sequence[str] = ()
) -> str | None:
    """The label column with the most values of k+1 or more products (ties: the one whose
    such values hold more products, then by name), leaving out `exclude` (the department
    and colour columns); None when none is left."""
    found = []
    for column in labels:
        if column not in exclude:
            big = [c for c in _value_counts(products, column).values() if c >= k + 1]
            found.append((-len(big), -sum(big), column))
    return min(found)[2] if found else None


def _titles_and_attrs(
    products: list[dict[str, Any]],
) -> tuple[list[str | None], list[dict[str, str]]]:
    return ([p.get("title") for p in products],
            [{a: attr(p, a) for a in p.get("attrs") or {}} for p in products])


def resolve_department(
    pre: Precomputed, option: str | None
) -> tuple[DepartmentSource | None, str]:
    """Where departments come from and how that was decided: `--department COLUMN`
    (or `none`), else meta.json's `department`, else detection over products.json."""
    titles, attrs = _titles_and_attrs(pre.products)
    if option is not None:
        if option == OFF:
            return None, "--department none"
        _check_columns(pre.products, [option], "--department")
        found = product_departments(titles, attrs, DepartmentSource("column", option, 0.0))
        coverage = sum(1 for d in found if d) / len(found)
        if coverage == 0:
            raise EvaluationError(f"--department {option!r}: none of its values names a "
                                  "department (men, women, kids, unisex, ...)")
        return DepartmentSource("column", option, coverage), "--department"
    if "department" in pre.meta:
        recorded = pre.meta["department"]
        if recorded is None:
            return None, "meta.json"
        if isinstance(recorded, dict) and recorded.get("source") in ("column", "title"):
            column = recorded.get("column")
            coverage = recorded.get("coverage")
            return DepartmentSource(
                str(recorded["source"]), column if isinstance(column, str) else None,
                float(coverage) if isinstance(coverage, int | float) else 0.0,
            ), "meta.json"
    return find_department_source(titles, attrs), "detected"


@dataclass
class Labelling:
    """How a folder's products are judged: label columns, kind, colour and department."""

    labels: list[str]
    kind: str | None
    kind_how: str
    colour: str | None  # the colour column cards are compared on
    colours: list[str]  # every colour-like column (shown on the contact sheet)
    department: DepartmentSource | None
    department_how: str
    departments: dict[str, str | None] = field(repr=False)
    products: dict[str, dict[str, Any]] = field(repr=False)
    primary: str | None = None  # the label at the top of `--json`

    def kind_of(self, pid: str) -> str:
        """The product's kind ("" unknown)."""
        return attr(self.products[pid], self.kind) if self.kind else ""

    def reasons(self, query: str, card: str) -> list[str]:
        """Why a card does not belong with its query: "other department", "other kind"."""
        found = []
        if not compatible(self.departments.get(query), self.departments.get(card)):
            found.append(OTHER_DEPARTMENT)
        a, b = self.kind_of(query), self.kind_of(card)
        if a and b and a != b:
            found.append(OTHER_KIND)
        return found

    def other_colour(self, query: str, card: str) -> bool | None:
        """Whether the card is in another colour (None: no colour column or value)."""
        if self.colour is None:
            return None
        a, b = attr(self.products[query], self.colour), attr(self.products[card], self.colour)
        return None if not a or not b else a != b

    def meta(self) -> dict[str, Any]:
        """The labelling for `--json`."""
        dept = None if self.department is None else {
            **self.department.meta(), "from": self.department_how}
        return {"labels": self.labels, "kind": self.kind, "colour": self.colour,
                "department": dept}


def folder_labelling(
    pre: Precomputed,
    k: int,
    labels: Sequence[str] | None = None,
    kind: str | None = None,
    department: str | None = None,
) -> Labelling:
    """The folder's `Labelling` by the module's rules; explicit columns win."""
    products = pre.products
    if labels:
        _check_columns(products, labels, "--label")
    chosen = list(dict.fromkeys(labels)) if labels else label_columns(products, k)
    source, how = resolve_department(pre, department)
    colours = colour_columns(products)
    dept_column = source.column if source is not None else None
    if kind == OFF:
        kind_col, kind_how = None, "--kind none"
    elif kind is not None:
        _check_columns(products, [kind], "--kind")
        kind_col, kind_how = kind, "--kind"
    elif labels:
        kind_col, kind_how = chosen[0], "the first --label"
    else:
        exclude = [c for c in (dept_column, *colours) if c]
        kind_col = kind_column(products, chosen, k, exclude)
        kind_how = (f"the label with the most values of >= {k + 1} products, "
                    "not department or colour") if kind_col else "no label left"
    depts = product_departments(*_titles_and_attrs(products), source)
    return Labelling(
        labels=chosen, kind=kind_col, kind_how=kind_how,
        colour=next((c for c in colours if c != kind_col), None), colours=colours,
        department=source, department_how=how,
        departments={p["id"]: d for p, d in zip(products, depts, strict=True)},
        products={p["id"]: p for p in products},
        primary=kind_col if not labels and kind_col in chosen else next(iter(chosen), None),
    )


# ---------------------------------------------------------------- the measures


@dataclass
class CardShares:
    """Shares of a row's shown cards that do not belong with their product."""

    n_cards: int
    other_department: float | None
    other_kind: float | None
    other_colour: float | None


def card_shares(
    neighbours: dict[str, list[list[Any]]], cards: int, labelling: Labelling
) -> CardShares:
    """Of every product's first `cards` cards: the share in another department (None
    without departments), another kind and another colour (None without the column;
    cards where either value is missing count as neither)."""
    n = dept = kind = colour = 0
    for pid, pairs in neighbours.items():
        for nid, _ in pairs[:cards]:
            n += 1
            reasons = labelling.reasons(pid, nid)
            dept += OTHER_DEPARTMENT in reasons
            kind += OTHER_KIND in reasons
            colour += labelling.other_colour(pid, nid) is True
    shares = [None if not n or not known else count / n for count, known in (
        (dept, labelling.department is not None), (kind, labelling.kind is not None),
        (colour, labelling.colour is not None))]
    return CardShares(n, *shares)


def shared_cards(
    row: dict[str, list[list[Any]]], first: dict[str, list[list[Any]]], cards: int
) -> float | None:
    """Mean number of a product's first `cards` cards in `row` that are also among its
    first `cards` cards of the `first` row (over products with cards in `row`)."""
    counts = []
    for pid, pairs in row.items():
        if not pairs:
            continue
        shown = {nid for nid, _ in first.get(pid, [])[:cards]}
        counts.append(sum(1 for nid, _ in pairs[:cards] if nid in shown))
    return sum(counts) / len(counts) if counts else None


@dataclass
class ShapeLikeness:
    """Mean shape cosine of each row's top-k against the purely visual top-k."""

    visual_mean: float | None  # over every product with a visual top-k
    row_means: dict[str, float] = field(default_factory=dict)  # row's top-k mean
    kept: dict[str, float] = field(default_factory=dict)  # row's mean / visual mean
    skipped: str | None = None  # why it could not be measured


def load_embeddings(pre: Precomputed) -> tuple[np.ndarray | None, str | None]:
    """embeddings.npy as float32 rows in products.json order, or (None, why not)."""
    import numpy as np

    path = pre.folder / EMBEDDINGS_FILE
    if not path.is_file():
        return None, f"{EMBEDDINGS_FILE} absent"
    try:
        emb = np.load(path, allow_pickle=False)
        if emb.ndim != 2 or emb.shape[0] != len(pre.products) or not emb.shape[1]:
            return None, (f"{EMBEDDINGS_FILE} has shape {emb.shape}, not one row per "
                          f"product ({len(pre.products)})")
        emb = emb.astype(np.float32)
    except (OSError, ValueError, TypeError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0]
        return None, f"{EMBEDDINGS_FILE} unreadable ({why})"
    if not np.isfinite(emb).all():
        return None, f"{EMBEDDINGS_FILE} holds values that are not finite numbers"
    return emb, None


def visual_top_k_means(emb: np.ndarray, sha256: Sequence[str | None], k: int) -> np.ndarray:
    """Each product's mean cosine to its k most shape-alike others, leaving out itself and
    byte-identical photos (same sha256), in blocks of rows (never an N x N matrix); NaN
    where no other product is left."""
    import numpy as np

    n = emb.shape[0]
    groups: dict[str, list[int]] = {}
    for i, sha in enumerate(sha256):
        if sha:
            groups.setdefault(sha, []).append(i)
    # ordered pairs of different products with the same photo (few: byte-identical images)
    pairs = [(i, j) for members in groups.values() if len(members) > 1
             for i in members for j in members if i != j]
    dup_i = np.array([i for i, _ in pairs], dtype=np.int64)
    dup_j = np.array([j for _, j in pairs], dtype=np.int64)
    # zero columns up to a whole number of chunks, so top_k_scores never copies a block
    columns = np.zeros((-(-n // TOP_K_CHUNK) * TOP_K_CHUNK, emb.shape[1]), dtype=np.float32)
    columns[:n] = emb
    block = max(1, min(n, SCAN_FLOATS // len(columns)))
    out = np.full(n, np.nan)
    kk = min(k, n - 1)
    for start in range(0, n if kk >= 1 else 0, block):
        stop = min(n, start + block)
        scores = emb[start:stop] @ columns.T
        scores[:, n:] = -np.inf
        local = np.arange(stop - start)
        scores[local, start + local] = -np.inf
        inside = (dup_i >= start) & (dup_i < stop)
        scores[dup_i[inside] - start, dup_j[inside]] = -np.inf
        top = top_k_scores(scores, kk)
        top[~np.isfinite(top)] = np.nan
        valid = ~np.isnan(top).all(axis=1)
        out[start:stop][valid] = np.nanmean(top[valid], axis=1)
    return out


def top_k_scores(scores: np.ndarray, k: int, chunk: int = TOP_K_CHUNK) -> np.ndarray:
    """The k highest values of each row, highest first. A row's top k lie in its k chunks
    with the highest maxima (k maxima at least as high as anything outside them), so only
    those are sorted: several times faster than np.partition on rows of 20,000."""
    import numpy as np

    b, n = scores.shape
    if n <= 2 * k * chunk:
        return -np.sort(-scores, axis=1)[:, :k]
    if n % chunk:
        scores = np.pad(scores, ((0, 0), (0, chunk - n % chunk)), constant_values=-np.inf)
    chunks = scores.reshape(b, -1, chunk)
    maxima = chunks.max(axis=2)
    best = np.argpartition(maxima, maxima.shape[1] - k, axis=1)[:, -k:]
    kept = np.take_along_axis(chunks, best[:, :, None], axis=1).reshape(b, k * chunk)
    return -np.sort(-np.partition(kept, k * chunk - k, axis=1)[:, -k:], axis=1)


def row_top_k_means(
    emb: np.ndarray, index: dict[str, int], neighbours: dict[str, list[list[Any]]], k: int
) -> np.ndarray:
    """Each product's mean shape cosine to its row's first k cards (NaN: no cards)."""
    import numpy as np

    out = np.full(emb.shape[0], np.nan)
    for pid, pairs in neighbours.items():
        cards = [index[nid] for nid, _ in pairs[:k]]
        if cards:
            i = index[pid]
            out[i] = float(np.mean(emb[cards] @ emb[i]))
    return out


def shape_likeness(pre: Precomputed, rows: Sequence[str], k: int) -> ShapeLikeness:
    """The shape likeness each row keeps: mean over products of its top-k's mean shape
    cosine, over the same mean of the purely visual top-k (embeddings.npy)."""
    import numpy as np

    emb, why = load_embeddings(pre)
    if emb is None:
        return ShapeLikeness(None, skipped=why)
    visual = visual_top_k_means(emb, [p.get("sha256") for p in pre.products], k)
    found = ShapeLikeness(float(np.nanmean(visual)) if np.isfinite(visual).any() else None)
    for key in rows:
        row = row_top_k_means(emb, pre.index, pre.rows[key], k)
        both = np.isfinite(row) & np.isfinite(visual)
        if not both.any():
            continue
        row_mean, visual_mean = float(row[both].mean()), float(visual[both].mean())
        found.row_means[key] = row_mean
        if visual_mean > 0:
            found.kept[key] = row_mean / visual_mean
    return found


# ---------------------------------------------------------------- the folder's report


@dataclass
class RowEvaluation:
    """Every measure of one recommendation row."""

    row: str
    title: str
    labels: dict[str, Evaluation]  # by label column, in the labelling's order
    shares: CardShares
    shared_with_first: float | None  # None for the first row
    shape_mean: float | None
    likeness_kept: float | None
    worst_kinds: list[dict[str, Any]]  # the kind column's labels, worst first

    def as_dict(self, primary: str | None, cards: int) -> dict[str, Any]:
        """The row for `--json`: the old keys of the primary label, then every measure."""
        head = self.labels[primary].as_dict() if primary in self.labels else {
            "label": None, "k": None, "n_queries": 0, "row": self.row,
            "precision_at_k": None, "vote_accuracy": None, "per_label": []}
        return {
            **head, "title": self.title,
            "labels": {c: {key: v for key, v in ev.as_dict().items() if key not in ("label", "row")}
                       for c, ev in self.labels.items()},
            "cards": cards, "n_cards": self.shares.n_cards,
            "other_department": self.shares.other_department,
            "other_kind": self.shares.other_kind, "other_colour": self.shares.other_colour,
            "shared_with_first": self.shared_with_first,
            "shape_likeness": None if self.likeness_kept is None else {
                "kept": self.likeness_kept, "row_mean": self.shape_mean},
            "worst_kinds": self.worst_kinds,
        }


@dataclass
class FolderEvaluation:
    """A precomputed folder's evaluation: how it was judged and every row's measures."""

    folder: Path
    n_products: int
    k: int
    cards: int
    labelling: Labelling
    likeness: ShapeLikeness
    rows: list[RowEvaluation]

    @property
    def primary(self) -> str | None:
        """The label at the top of `--json`: the first --label, else the kind."""
        return self.labelling.primary

    def as_dict(self) -> dict[str, Any]:
        """`--json`: the first row's old keys at the top, every row in "rows"."""
        rows = {r.row: r.as_dict(self.primary, self.cards) for r in self.rows}
        first = next(iter(rows.values()))
        old = ("label", "k", "n_queries", "row", "precision_at_k", "vote_accuracy",
               "per_label")
        return {
            **{key: first[key] for key in old}, "rows": rows,
            "folder": str(self.folder), "n_products": self.n_products, "cards": self.cards,
            **self.labelling.meta(),
            "shape_likeness": {"visual_mean": self.likeness.visual_mean,
                               "skipped": self.likeness.skipped},
        }


def evaluate_folder(
    folder: str | Path,
    labels: Sequence[str] | None = None,
    k: int = DEFAULT_K,
    row: str | None = None,
    cards: int | None = None,
    kind: str | None = None,
    department: str | None = None,
    pre: Precomputed | None = None,
) -> FolderEvaluation:
    """Every measure of every row (or only `row`) of a precomputed folder; `labels`,
    `kind` and `department` override the module's rules, `cards` (default 10, at most
    the folder's k) is how many cards per product are judged."""
    pre = read_precomputed(folder) if pre is None else pre
    _check_row_and_k(pre, row, k)
    folder_k = int(pre.meta.get("k", 0))
    if cards is not None and not 1 <= cards <= folder_k:
        raise EvaluationError(f"--cards {cards}: must be from 1 to the folder's k ({folder_k})")
    shown = cards if cards is not None else min(DEFAULT_CARDS, folder_k)
    labelling = folder_labelling(pre, k, labels, kind, department)
    keys = [row] if row is not None else list(pre.rows)
    likeness = shape_likeness(pre, keys, k)
    first_key = next(iter(pre.rows))
    titles = {r["key"]: r.get("title") or r["key"] for r in pre.meta["rows"]}
    values = {c: {p["id"]: attr(p, c) for p in pre.products}
              for c in dict.fromkeys([*labelling.labels,
                                      *([labelling.kind] if labelling.kind else [])])}
    out = []
    for key in keys:
        neighbours = pre.rows[key]
        by_label = {c: _label_evaluation(values[c], neighbours, c, k, key)
                    for c in labelling.labels}
        worst: list[dict[str, Any]] = []
        if labelling.kind:
            kind_ev = by_label.get(labelling.kind)
            worst = (kind_ev.per_label if kind_ev is not None
                     else evaluate_neighbours(values[labelling.kind], neighbours, k)[3])
        out.append(RowEvaluation(
            row=key, title=str(titles.get(key, key)), labels=by_label,
            shares=card_shares(neighbours, shown, labelling),
            shared_with_first=None if key == first_key
            else shared_cards(neighbours, pre.rows[first_key], shown),
            shape_mean=likeness.row_means.get(key), likeness_kept=likeness.kept.get(key),
            worst_kinds=worst,
        ))
    return FolderEvaluation(Path(pre.folder), len(pre.products), k, shown, labelling,
                            likeness, out)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def format_folder_report(fe: FolderEvaluation, per_label: bool = False) -> str:
    """The evaluation as text: how the folder was judged, then one block per row."""
    lab, k = fe.labelling, fe.k
    lines = [f"{fe.folder}: {fe.n_products:,} products, k={k}, {fe.cards} cards per product"]
    lines.append("labels: " + (", ".join(lab.labels) if lab.labels else
                               f"none (no attribute has 2 values of >= {k + 1} products)"))
    lines.append(f"kind: {lab.kind or 'none'} ({lab.kind_how})")
    if lab.department is None:
        lines.append(f"department: none ({lab.department_how})")
    else:
        where = (f"column {lab.department.column!r}" if lab.department.kind == "column"
                 else "titles")
        lines.append(f"department: {where} ({lab.department_how}), "
                     f"{100 * lab.department.coverage:.1f}% of products; unisex and unknown "
                     "go with all")
    if lab.colour:
        lines.append(f"colour: {lab.colour}")
    if fe.likeness.skipped:
        lines.append(f"shape likeness: skipped, {fe.likeness.skipped}")
    elif fe.likeness.visual_mean is not None:
        lines.append(f"shape likeness: purely visual top-{k} mean shape cosine "
                     f"{fe.likeness.visual_mean:.3f} ({EMBEDDINGS_FILE})")
    first = fe.rows[0].row if fe.rows else ""
    for r in fe.rows:
        lines += ["", f"row {r.row!r} \"{r.title}\""]
        if r.labels:
            width = max(12, *(len(c) for c in r.labels))
            lines.append(f"  {'label':<{width}} {'queries':>8} {f'precision@{k}':>12} "
                         f"{'vote':>6}")
            for c, ev in r.labels.items():
                lines.append(f"  {c:<{width}} {ev.n_queries:>8} {ev.precision_at_k:>12.3f} "
                             f"{ev.vote_accuracy:>6.3f}")
        s = r.shares
        parts = [f"{s.n_cards:,} cards"]
        if s.other_department is not None:
            parts.append(f"another department {_percent(s.other_department)}")
        if s.other_kind is not None:
            parts.append(f"another kind {_percent(s.other_kind)}")
        if s.other_colour is not None:
            parts.append(f"another {lab.colour} {_percent(s.other_colour)}")
        lines.append("  " + "; ".join(parts))
        if r.shared_with_first is not None:
            lines.append(f"  cards also in row {first!r}: {r.shared_with_first:.2f} of "
                         f"{fe.cards} per product")
        if r.likeness_kept is not None and r.shape_mean is not None:
            lines.append(f"  shape likeness kept: {r.likeness_kept:.3f} (top-{k} mean shape "
                         f"cosine {r.shape_mean:.3f} / purely visual "
                         f"{fe.likeness.visual_mean:.3f})")
        if r.worst_kinds:
            lines += _worst_kinds(r.worst_kinds, lab.kind or "", k, per_label)
    return "\n".join(lines)


def _worst_kinds(per: list[dict[str, Any]], kind: str, k: int, every: bool) -> list[str]:
    if not every:
        shown = ", ".join(f"{r['label']} {r['precision_at_k']:.2f} (n={r['n']})"
                          for r in per[:WORST_SHOWN])
        more = (f", {WORST_SHOWN} of {len(per)}; --per-label for all"
                if len(per) > WORST_SHOWN else "")
        return [f"  worst kinds ({kind} precision@{k}{more}):", f"    {shown}"]
    width = max(12, *(len(r["label"]) for r in per))
    lines = [f"  worst kinds ({kind}, {len(per)} with >= {k + 1} products):",
             f"    {'kind':<{width}} {'n':>6} {f'precision@{k}':>12} {'vote':>6}"]
    lines += [f"    {r['label']:<{width}} {r['n']:>6} {r['precision_at_k']:>12.3f} "
              f"{r['vote_accuracy']:>6.3f}" for r in per]
    return lines


# ---------------------------------------------------------------- command line


def add_evaluate_arguments(e: argparse.ArgumentParser) -> None:
    """The options of `python -m pipeline evaluate`."""
    e.add_argument("precomputed", type=Path)
    e.add_argument("--label", action="append", metavar="COLUMN",
                   help="attribute column to score precision@k on; repeatable (default: "
                   f"every column with 2+ values of k+1 products holding >= {LABEL_SHARE:.0%} "
                   "of the products, not numbers)")
    e.add_argument("--k", type=int, default=DEFAULT_K, help="precision@k (default 5)")
    e.add_argument("--row", help="evaluate only this row (default: every row)")
    e.add_argument("--cards", type=int,
                   help=f"cards per product judged for department, kind and overlap "
                   f"(default {DEFAULT_CARDS}, at most the folder's k)")
    e.add_argument("--kind", metavar="COLUMN",
                   help="the column that says what kind of product it is (default: the "
                   "first --label, else the label with the most values of k+1 products, "
                   "not department or colour); 'none': off")
    e.add_argument("--department", metavar="COLUMN",
                   help="column naming departments (default: meta.json's, else detected "
                   "from a column or the titles); 'none': off")
    e.add_argument("--per-label", action="store_true",
                   help=f"list every kind worst first (default: the {WORST_SHOWN} worst)")
    e.add_argument("--sheet", type=Path, metavar="FILE.html",
                   help="also write an HTML contact sheet of random products and their rows")
    e.add_argument("--sheet-n", type=int, default=10, help="products on the sheet (default 10)")
    e.add_argument("--seed", type=int, default=0, help="which products the sheet shows")
    e.add_argument("--json", action="store_true", help="machine-readable output")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `python -m pipeline evaluate` with parsed `args`; print the report."""
    if args.sheet is not None and args.sheet_n < 1:
        raise EvaluationError(f"--sheet-n {args.sheet_n}: must be at least 1")
    pre = read_precomputed(args.precomputed)
    fe = evaluate_folder(args.precomputed, args.label, args.k, args.row, args.cards,
                         args.kind, args.department, pre=pre)
    if args.json:
        print(json.dumps(fe.as_dict(), indent=2))
    else:
        print(format_folder_report(fe, per_label=args.per_label))
    if args.sheet is not None:
        from .contact_sheet import write_contact_sheet

        n = write_contact_sheet(pre, fe, args.sheet, n=args.sheet_n, seed=args.seed,
                                report=format_folder_report(fe))
        note = f"contact sheet: {n} products -> {args.sheet}"
        print(note, file=sys.stderr if args.json else sys.stdout)
    return 0
