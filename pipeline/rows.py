"""Named rows of recommendations and the rules that score them, for the build and for
dynamic mode's uploads alike (one implementation, so an upload gets the catalog's rows).

A row is a rule over two similarities of a query and a product, both cosines of unit
vectors: `shape` (the CNN features, whitened when the build whitens) and `colour` (the
descriptor of `pipeline.colour`):

- `similar` ("Looks like this"): `shape_w * shape + colour_w * colour`, weights summing
  to 1. The user's colour weight `w` applies to the two similarities after standardising
  each by its spread over random pairs of the catalog (so `w` means the same for any
  model), which gives `shape_w` proportional to (1 - w) / sd(shape) and `colour_w` to
  w / sd(colour).
- `other_colours` ("Same style, other colours"): shape only, among products whose colour
  similarity to the query is at most `max_colour`: the given quantile of colour
  similarity over random pairs, and never above OTHER_COLOUR_CAP (in a catalog of few
  colours the quantile itself can fall among same-colour pairs).

`prefer` (a column, e.g. gender) ranks neighbours with the query's value first when their
score is within `margin` of a better one of another value; published scores stay the
row's own scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .precomputed import score_percentile as percentile  # noqa: F401 - re-exported
from .similarity import (
    Metric,
    _codes,
    blas_tolerance,
    block_scores,
    candidate_columns,
    finish_scores,
    pair_scores,
    prepare_features,
    top_k_of_candidates,
)

SIMILAR, OTHER_COLOURS = "similar", "other_colours"
ROW_TITLES = {SIMILAR: "Looks like this", OTHER_COLOURS: "Same style, other colours"}
ROW_KEYS: tuple[str, ...] = (SIMILAR, OTHER_COLOURS)
# Measured on fashion-small-2k (bench/bench_rows.py, README "Recommendation rows"): the
# weight where articleType precision@5 stays >= 0.665, for whitened and for raw features
# (whitening spreads shape similarities out, so the same colour weight moves less).
DEFAULT_COLOUR_WEIGHT = 0.49
DEFAULT_COLOUR_WEIGHT_UNWHITENED = 0.09
DEFAULT_OTHER_COLOUR_QUANTILE = 0.9  # articleType 0.616 with 87% in another baseColour
OTHER_COLOUR_CAP = 0.7  # fashion-small-2k's 0.9 quantile is 0.58; few-colour catalogs
DEFAULT_PREFER_MARGIN = 0.05  # --prefer gender: gender 0.769 -> 0.853, articleType +0.013
PAIR_SAMPLE = 20_000
N_QUANTILES = 101


@dataclass(frozen=True)
class RowRule:
    """How one row's neighbours are scored and filtered."""

    key: str
    title: str
    shape: float
    colour: float
    max_colour: float | None = None

    @property
    def file(self) -> str:
        """The row's file in the precomputed folder (`similar` keeps neighbours.json)."""
        return row_file(self.key)

    def meta(self) -> dict[str, Any]:
        """The row's entry of meta.json's `rows` (score_quantiles are added by the build)."""
        return {
            "key": self.key,
            "title": self.title,
            "file": self.file,
            "weights": {"shape": round(self.shape, 6), "colour": round(self.colour, 6)},
            "max_colour": None if self.max_colour is None else round(self.max_colour, 6),
        }

    @classmethod
    def from_meta(cls, entry: dict[str, Any]) -> RowRule:
        """The rule of a meta.json `rows` entry (what dynamic mode applies to uploads)."""
        weights = entry.get("weights") or {"shape": 1.0, "colour": 0.0}
        return cls(
            key=entry["key"],
            title=entry.get("title") or entry["key"],
            shape=float(weights.get("shape", 1.0)),
            colour=float(weights.get("colour", 0.0)),
            max_colour=entry.get("max_colour"),
        )

    def scores(
        self, shape: np.ndarray, colour: np.ndarray | None, slack: float = 0.0
    ) -> np.ndarray:
        """The row's scores from shape and colour similarities (excluded: -inf); `slack`
        loosens the colour filter (candidates for exact re-scoring)."""
        if self.colour == 0 or colour is None:
            s = shape.astype(np.float32, copy=True)
        else:
            s = (self.shape * shape + self.colour * colour).astype(np.float32)
        if self.max_colour is not None and colour is not None:
            s[colour > self.max_colour + slack] = -np.inf
        return s


def default_colour_weight(whitened: bool) -> float:
    """The measured default colour weight for whitened or raw shape features."""
    return DEFAULT_COLOUR_WEIGHT if whitened else DEFAULT_COLOUR_WEIGHT_UNWHITENED


def row_file(key: str) -> str:
    """`neighbours.json` for the `similar` row, `neighbours-<key>.json` for the others."""
    return "neighbours.json" if key == SIMILAR else f"neighbours-{key}.json"


def _pair_cosines(x: np.ndarray, seed: int, n_pairs: int = PAIR_SAMPLE) -> np.ndarray:
    """Cosines of random pairs of distinct rows (unit rows), reproducible for a seed."""
    n = len(x)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, n_pairs)
    b = rng.integers(0, n, n_pairs)
    keep = a != b
    return np.einsum("ij,ij->i", x[a[keep]], x[b[keep]])


def plan_rows(
    keys: Sequence[str],
    shape: np.ndarray,
    colour: np.ndarray | None,
    colour_weight: float = DEFAULT_COLOUR_WEIGHT,
    other_colour_quantile: float = DEFAULT_OTHER_COLOUR_QUANTILE,
    seed: int = 0,
) -> list[RowRule]:
    """The rules of the rows `keys` for a catalog of unit `shape` and `colour` rows."""
    unknown = [k for k in keys if k not in ROW_TITLES]
    if unknown:
        raise ValueError(f"unknown row {unknown[0]!r}; rows are {', '.join(ROW_KEYS)}")
    if not 0 <= colour_weight < 1:
        raise ValueError(f"colour weight {colour_weight:g}: must be at least 0 and below 1")
    if not 0 < other_colour_quantile < 1:
        raise ValueError(f"other-colour quantile {other_colour_quantile:g}: must be in (0, 1)")
    if len(shape) < 2 or colour is None:
        shape_w, colour_w, max_colour = 1.0, 0.0, None
    else:
        sd_shape = float(np.std(_pair_cosines(shape, seed))) or 1.0
        colour_pairs = _pair_cosines(colour, seed + 1)
        sd_colour = float(np.std(colour_pairs)) or 1.0
        a, b = (1 - colour_weight) / sd_shape, colour_weight / sd_colour
        shape_w, colour_w = a / (a + b), b / (a + b)
        max_colour = min(float(np.quantile(colour_pairs, other_colour_quantile)),
                         OTHER_COLOUR_CAP)
    rules = []
    for key in dict.fromkeys(keys):
        if key == SIMILAR:
            rules.append(RowRule(key, ROW_TITLES[key], shape_w, colour_w))
        elif colour is not None:
            rules.append(RowRule(key, ROW_TITLES[key], 1.0, 0.0, max_colour))
    return rules


def prefer_bonus(
    scores: np.ndarray, same: np.ndarray | None, margin: float
) -> np.ndarray:
    """Scores to rank by: `margin` added where the neighbour shares the query's value."""
    if same is None or margin <= 0:
        return scores
    return np.where(same, scores + np.float32(margin), scores)


def rows_top_k_block(
    rules: Sequence[RowRule],
    shape: np.ndarray,
    sq_norms: np.ndarray | None,
    colour: np.ndarray | None,
    start: int,
    stop: int,
    k: int,
    metric: Metric = "cosine",
    group_codes: np.ndarray | None = None,
    dup_codes: np.ndarray | None = None,
    prefer_codes: np.ndarray | None = None,
    margin: float = DEFAULT_PREFER_MARGIN,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k of query rows [start, stop) for every rule: [(indices, scores)] in rule order.

    The shape block is computed once and shared by the rules; scores are the rules' own
    ('higher is closer'; `finish_scores` turns Euclidean ones into distances). The block's
    float32 matmul only picks candidates (`candidate_columns`); they are ranked by exact
    scores (`pair_scores`), so every engine and BLAS gives the same bytes.
    """
    s_shape = block_scores(shape, sq_norms, start, stop, metric)
    uses_colour = colour is not None and any(r.colour or r.max_colour is not None for r in rules)
    s_colour = colour[start:stop] @ colour.T if uses_colour else None
    same = None
    if prefer_codes is not None:
        same = prefer_codes[start:stop, None] == prefer_codes[None, :]
    tolerance = blas_tolerance(sq_norms)
    out = []
    for rule in rules:
        loose = prefer_bonus(rule.scores(s_shape, s_colour, tolerance), same, margin)
        cand = candidate_columns(loose, start, k, tolerance, group_codes, dup_codes)
        exact_colour = pair_scores(colour, start, cand, "cosine") if uses_colour else None
        exact = rule.scores(pair_scores(shape, start, cand, metric), exact_colour)
        if same is not None:
            same_cand = prefer_codes[start:stop, None] == prefer_codes[np.maximum(cand, 0)]
            ranking = prefer_bonus(exact, same_cand, margin)
        else:
            ranking = exact
        idx, _ = top_k_of_candidates(cand, ranking, k)
        pos = np.argmax(cand[:, None, :] == idx[:, :, None], axis=2)  # idx's place in cand
        picked = np.take_along_axis(exact, pos, axis=1)
        out.append((idx, np.where(idx >= 0, picked, np.nan).astype(np.float32)))
    return out


@dataclass
class RowInputs:
    """What every block of the rows' top-k reads: prepared features and codes."""

    shape: np.ndarray
    sq_norms: np.ndarray | None
    colour: np.ndarray | None
    group_codes: np.ndarray | None
    dup_codes: np.ndarray | None
    prefer_codes: np.ndarray | None

    @classmethod
    def prepare(
        cls,
        shape: np.ndarray,
        colour: np.ndarray | None,
        metric: Metric,
        groups: Sequence[str] | None = None,
        duplicate_keys: Sequence[str] | None = None,
        prefer: Sequence[str] | None = None,
    ) -> RowInputs:
        """Normalise features for the metric and turn keys into integer codes."""
        x, sq = prepare_features(shape, metric)
        n = len(x)
        return cls(x, sq, None if colour is None else np.asarray(colour, np.float32),
                   _codes(groups, n), _codes(duplicate_keys, n), _codes(prefer, n))


def rows_top_k(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    k: int,
    metric: Metric = "cosine",
    margin: float = DEFAULT_PREFER_MARGIN,
    block: int = 1024,
    progress: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact top-k of every product for every rule, in row blocks (peak O(block x N))."""
    n = len(inputs.shape)
    out = [
        (np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan, dtype=np.float32))
        for _ in rules
    ]
    starts: Any = range(0, n, block)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="similarity", unit="block", total=-(-n // block))
    for start in starts:
        stop = min(start + block, n)
        found = rows_top_k_block(
            rules, inputs.shape, inputs.sq_norms, inputs.colour, start, stop, k, metric,
            inputs.group_codes, inputs.dup_codes, inputs.prefer_codes, margin,
        )
        for (idx, scores), (bi, bs) in zip(out, found, strict=True):
            idx[start:stop], scores[start:stop] = bi, bs
    return [(idx, finish_scores(scores, metric)) for idx, scores in out]


def score_quantiles(scores: np.ndarray, n: int = N_QUANTILES) -> list[float]:
    """`n` ascending quantiles of a row's published scores (padding ignored); [] if none.

    The app turns a score into the share of the row's scores below it with `bisect`.
    """
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return []
    qs = np.quantile(finite, np.linspace(0, 1, n))
    return [round(float(q), 6) for q in np.maximum.accumulate(qs)]
