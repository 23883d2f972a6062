"""Recommendation rows on real photos: the words signal and departments (issue 17: real
builds, measured by `pipeline evaluate`), colour weight, whitening, other colours,
--prefer, and the calibrated score, all on fashion-small-2k with the shared MobileNet.

One build fills the feature cache (features and colour descriptors from one decode);
every configuration is then computed from the cache with the build's own functions
(`pipeline.rows`, `pipeline.whitening`) and scored with `pipeline.evaluate`'s
precision@5 against styles.csv's labels, so the figures are what a build with those
options writes.
Usage: python bench/bench_rows.py [--out bench/out/rows] [--quick] [--words-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from bench_first_paint import cpu_line  # noqa: E402

from pipeline.colour import centre_colours  # noqa: E402
from pipeline.evaluate import evaluate_neighbours  # noqa: E402
from pipeline.features import FeatureCache, cache_key  # noqa: E402
from pipeline.models import file_sha256, model_key  # noqa: E402
from pipeline.precomputed import score_percentile as percentile  # noqa: E402
from pipeline.rows import (  # noqa: E402
    DEFAULT_COLOUR_WEIGHT,
    DEFAULT_OTHER_COLOUR_QUANTILE,
    DEFAULT_PREFER_MARGIN,
    OTHER_COLOURS,
    SIMILAR,
    RowInputs,
    plan_rows,
    rows_top_k,
    score_quantiles,
)
from pipeline.similarity import l2_normalise  # noqa: E402
from pipeline.whitening import fit_whitening  # noqa: E402

SHARED = REPO.parent / "shared"
FASHION = SHARED / "data" / "fashion-small-2k"
MODEL = SHARED / "models" / "mobilenet-v1-imagenet-dw13-gap.keras"


class Catalog:
    """fashion-small-2k's ids, labels, sha256s, raw features and colour descriptors."""

    def __init__(self, out: Path) -> None:
        folder = out / "fashion"
        cache = out / "cache"
        if not (folder / "meta.json").is_file():
            subprocess.run(
                [sys.executable, "-m", "pipeline", "build", str(FASHION / "images"),
                 "--metadata", str(FASHION / "styles.csv"), "--title-column",
                 "productDisplayName", "--model", str(MODEL), "--out", str(folder),
                 "--cache-dir", str(cache), "--no-progress"],
                check=True, cwd=REPO,
            )
        meta = json.loads((folder / "meta.json").read_text())
        products = json.loads((folder / "products.json").read_text())
        self.ids = [p["id"] for p in products]
        self.sha = [p["sha256"] for p in products]
        self.attrs = {p["id"]: p["attrs"] for p in products}
        key = cache_key(model_key(meta["model"]), meta["model"]["resize"],
                        meta["model"].get("precision", "float32"))
        fc = FeatureCache.open(cache, key, set(self.sha))
        self.raw = np.stack([fc.features[s] for s in self.sha]).astype(np.float32)
        self.colour = np.stack([fc.colours[s] for s in self.sha]).astype(np.float32)

    def labels(self, name: str) -> dict[str, str]:
        """{id: label} of one styles.csv column."""
        return {pid: a.get(name, "") or "" for pid, a in self.attrs.items()}

    def rows(self, colour_weight: float = DEFAULT_COLOUR_WEIGHT, whiten: bool = True,
             dims: int = 256, quantile: float = DEFAULT_OTHER_COLOUR_QUANTILE,
             prefer: str | None = None, margin: float = DEFAULT_PREFER_MARGIN, k: int = 10,
             ) -> dict[str, tuple[dict, np.ndarray]]:
        """{row key: (neighbours as in neighbours.json, scores)} for one configuration."""
        w = fit_whitening(self.raw, dims) if whiten else None
        shape = w.apply(self.raw) if w else l2_normalise(self.raw)
        colour = centre_colours(self.colour, self.colour.mean(axis=0))
        rules = plan_rows((SIMILAR, OTHER_COLOURS), shape, colour, colour_weight, quantile)
        pref = [self.attrs[i].get(prefer, "") for i in self.ids] if prefer else None
        inputs = RowInputs.prepare(shape, colour, "cosine", None, self.sha, pref)
        out = {}
        for rule, (idx, scores) in zip(rules, rows_top_k(rules, inputs, k, margin=margin),
                                       strict=True):
            nb = {pid: [[self.ids[j], float(s)] for j, s in zip(idx[i], scores[i], strict=True)
                        if j >= 0] for i, pid in enumerate(self.ids)}
            out[rule.key] = (nb, scores)
        return out

    def precision(self, nb: dict, label: str, k: int = 5) -> tuple[float, float]:
        """(precision@k, vote accuracy) against a label, as `python -m pipeline evaluate`."""
        _, prec, vote, _ = evaluate_neighbours(self.labels(label), nb, k)
        return prec, vote

    def differs(self, nb: dict, label: str, k: int = 5) -> float:
        """Share of the first k neighbours whose label differs from the query's (labelled
        queries and neighbours only)."""
        lab = self.labels(label)
        pairs = [(lab[q], lab[n]) for q, ns in nb.items() for n, _ in ns[:k]
                 if lab[q] and lab[n]]
        return sum(a != b for a, b in pairs) / max(len(pairs), 1)


def build_and_evaluate(out: Path, folder: Path, *options: str,
                       evaluate: tuple[str, ...] = ()) -> dict:
    """Build fashion-small-2k with `options` (features from the bench's cache) and return
    `python -m pipeline evaluate --json`'s rows against articleType and baseColour."""
    subprocess.run(
        [sys.executable, "-m", "pipeline", "build", str(FASHION / "images"),
         "--metadata", str(FASHION / "styles.csv"), "--title-column", "productDisplayName",
         "--model", str(MODEL), "--out", str(folder), "--cache-dir", str(out / "cache"),
         "--no-progress", *options],
        check=True, cwd=REPO, capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate", str(folder), "--label", "articleType",
         "--label", "baseColour", "--json", *evaluate], check=True, cwd=REPO, capture_output=True,
        text=True)
    return json.loads(done.stdout)["rows"]


def words_curve(out: Path, quick: bool) -> None:
    """Issue 17's measures by text weight, each a real build (departments on, the default)."""
    print("\n# words: text weight of 'Looks like this' vs every measure (default build "
          "otherwise; departments from the gender column)")
    print("text weight  articleType  baseColour  other department  shape likeness kept")
    for w in (0.0, 0.2, 0.35, 0.5) if quick else (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6):
        r = build_and_evaluate(out, out / f"w{w}", "--text-weight", str(w))["similar"]
        print(f"{w:11.2f}  {r['labels']['articleType']['precision_at_k']:11.3f}  "
              f"{r['labels']['baseColour']['precision_at_k']:10.3f}  "
              f"{100 * r['other_department']:15.1f}%  {r['shape_likeness']['kept']:19.3f}",
              flush=True)
    r = build_and_evaluate(out, out / "visual", "--text-weight", "0", "--other-text-weight",
                           "0", "--department", "none", "--other-colour-quantile", "0.9",
                           evaluate=("--department", "gender"))
    print(f"visual rows (--text-weight 0 --other-text-weight 0 --department none): "
          f"articleType {r['similar']['labels']['articleType']['precision_at_k']:.3f}, "
          f"baseColour {r['similar']['labels']['baseColour']['precision_at_k']:.3f}, "
          f"other department {100 * r['similar']['other_department']:.1f}%")
    print("\n# words: text weight of 'Same style, other colours' (colour words left out) and "
          "its colour quantile")
    print("text weight  quantile  articleType  another baseColour  shared with row 1  "
          "shape likeness kept")
    grid = ((0.0, 0.9), (0.5, 0.7)) if quick else (
        (0.0, 0.9), (0.0, 0.7), (0.3, 0.7), (0.4, 0.7), (0.5, 0.7), (0.6, 0.7), (0.5, 0.8),
        (0.5, 0.9))
    for w, q in grid:
        r = build_and_evaluate(out, out / f"o{w}-{q}", "--other-text-weight", str(w),
                               "--other-colour-quantile", str(q))["other_colours"]
        print(f"{w:11.2f}  {q:8.2f}  {r['labels']['articleType']['precision_at_k']:11.3f}  "
              f"{100 * r['other_colour']:17.1f}%  {r['shared_with_first']:17.2f}  "
              f"{r['shape_likeness']['kept']:19.3f}", flush=True)


def main() -> None:
    """Print every table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "rows")
    ap.add_argument("--quick", action="store_true", help="fewer grid points")
    ap.add_argument("--words-only", action="store_true",
                    help="only the words curves (real builds from the feature cache)")
    args = ap.parse_args()
    if not FASHION.is_dir() or not MODEL.is_file():
        sys.exit(f"needs ../shared (fashion-small-2k and the shared model) at {SHARED}")
    print(cpu_line())
    t0 = time.perf_counter()
    cat = Catalog(args.out)
    words_curve(args.out, args.quick)
    if args.words_only:
        print(f"\ntotal {time.perf_counter() - t0:.0f} s")
        return
    print(f"fashion-small-2k: {len(cat.ids)} products, model sha256 {file_sha256(MODEL)[:12]}")

    print("\n# similar row: colour weight vs precision@5 (whitened, the default, and raw)")
    print("whiten  weight  articleType  vote   baseColour  gender")
    grid = (0.0, 0.3, 0.5) if args.quick else (0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6,
                                               0.7)
    for whiten in (True, False):
        for w in grid if whiten else tuple(g / 4 for g in grid):
            nb, _ = cat.rows(w, whiten)[SIMILAR]
            at, vote = cat.precision(nb, "articleType")
            print(f"{'yes' if whiten else 'no ':6s}  {w:5.3f}   {at:.3f}        {vote:.3f}  "
                  f"{cat.precision(nb, 'baseColour')[0]:.3f}       "
                  f"{cat.precision(nb, 'gender')[0]:.3f}", flush=True)

    print("\n# whitening dimensions (colour weight 0: shape only)")
    print("dims  articleType  vote")
    for dims in (64, 128, 256, 384, 512) if not args.quick else (128, 256):
        nb, _ = cat.rows(0.0, True, dims)[SIMILAR]
        at, vote = cat.precision(nb, "articleType")
        print(f"{dims:4d}  {at:.3f}        {vote:.3f}", flush=True)

    print("\n# other_colours row: colour quantile vs articleType precision@5 and colour change")
    print("quantile  articleType  different baseColour")
    for q in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95) if not args.quick else (0.8, 0.9):
        nb, _ = cat.rows(quantile=q)[OTHER_COLOURS]
        print(f"{q:.2f}      {cat.precision(nb, 'articleType')[0]:.3f}        "
              f"{cat.differs(nb, 'baseColour'):.3f}", flush=True)

    print("\n# --prefer gender: margin vs precision@5 (similar row)")
    print("margin  articleType  gender  cross-gender share")
    for m in (0.0, 0.01, 0.02, 0.05, 0.1) if not args.quick else (0.0, 0.02):
        nb, _ = cat.rows(prefer="gender", margin=m)[SIMILAR]
        print(f"{m:.3f}   {cat.precision(nb, 'articleType')[0]:.3f}        "
              f"{cat.precision(nb, 'gender')[0]:.3f}   {cat.differs(nb, 'gender'):.3f}",
              flush=True)

    print("\n# calibrated score: articleType precision per decile of the score's percentile")
    rows = cat.rows()
    lab = cat.labels("articleType")
    for key, (nb, scores) in rows.items():
        qs = score_quantiles(scores)
        bands: list[list[int]] = [[] for _ in range(10)]
        for q, ns in nb.items():
            for n, s in ns:
                if lab[q] and lab[n]:
                    band = min(int((percentile(s, qs) or 0) // 10), 9)
                    bands[band].append(lab[q] == lab[n])
        cells = " ".join(f"{100 * np.mean(b):4.0f}" if b else "   -" for b in bands)
        print(f"{key:14s} band 0..9 (%): {cells}   (n per band ~{len(bands[5])})")

    print("\n# what shoppers see: the shop front's match labels (shopfront.components."
          "match_label)\n# share of cards whose articleType is the query's, per label")
    from shopfront.components import match_label

    for key, (nb, scores) in rows.items():
        qs = score_quantiles(scores)
        by_label: dict[str, list[bool]] = {}
        for q, ns in nb.items():
            for n, s in ns:
                if lab[q] and lab[n]:
                    label = match_label(s, qs)
                    by_label.setdefault(label[0] if label else "-", []).append(lab[q] == lab[n])
        cells = ", ".join(f"{name} {100 * np.mean(v):.0f}% (n={len(v)})"
                          for name, v in by_label.items())
        print(f"{key:14s} {cells}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
