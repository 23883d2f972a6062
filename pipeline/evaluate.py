"""Offline quality of a precomputed folder against a label column (e.g. articleType)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .precomputed import read_precomputed


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
    if row is not None and row not in pre.rows:
        raise EvaluationError(f"--row {row!r}: no such row (rows: {', '.join(pre.rows)})")
    if k < 1:
        raise EvaluationError(f"--k {k}: must be at least 1")
    if k > int(pre.meta.get("k", 0)):
        raise EvaluationError(
            f"--k {k}: the folder holds only {pre.meta.get('k')} neighbours per product; "
            "rebuild with a larger --k"
        )
    if not any(label in p.get("attrs", {}) for p in pre.products):
        attrs = sorted({a for p in pre.products for a in p.get("attrs", {})})
        raise EvaluationError(
            f"--label {label!r}: no such attribute (attributes: {', '.join(attrs) or 'none'})"
        )
    labels = {p["id"]: (p.get("attrs", {}).get(label) or "") for p in pre.products}
    out = []
    for key, neighbours in pre.rows.items():
        if row is not None and key != row:
            continue
        n, prec, vote, per = evaluate_neighbours(labels, neighbours, k)
        if n == 0:
            raise EvaluationError(f"--label {label!r}: no label has {k + 1} or more products")
        out.append(Evaluation(label, k, n, key, prec, vote, per))
    return out


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


def add_evaluate_arguments(e: argparse.ArgumentParser) -> None:
    """The options of `python -m pipeline evaluate`."""
    e.add_argument("precomputed", type=Path)
    e.add_argument("--label", required=True, help="attribute column, e.g. articleType")
    e.add_argument("--k", type=int, default=5)
    e.add_argument("--row", help="evaluate only this row (default: every row)")
    e.add_argument("--json", action="store_true", help="machine-readable output")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `python -m pipeline evaluate` with parsed `args`; print the report."""
    evs = evaluate_rows(args.precomputed, args.label, args.k, args.row)
    if args.json:  # the first (or chosen) row at the top, as before rows; every row in "rows"
        data = {**evs[0].as_dict(), "rows": {ev.row: ev.as_dict() for ev in evs}}
        print(json.dumps(data, indent=2))
    else:
        print("\n\n".join(format_report(ev) for ev in evs))
    return 0
