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

Two more similarities come from the products' words (`pipeline.text`): `text`, the cosine
of their title and attribute values without colour words (TF-IDF reduced by SVD: what
kind of product it is), and `colour_words`, the cosine of their colour words (TF-IDF).
`similar` blends both; `other_colours` only `text`, so a shared colour name does not pull
the same colour back. Each is standardised like colour. `other_colours` also leaves out
the products among the first row's cards.

`prefer` (a column, e.g. gender) ranks neighbours with the query's value first when their
score is within `margin` of a better one of another value. Departments
(`pipeline.departments`) rank every product of a department that does not go with the
query's after all that do (`DEPARTMENT_PENALTY`), so a row stays in the shopper's
department unless too few products are left. Published scores stay the row's own scores.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .similarity import (
    RESCORE_EXTRA,
    Metric,
    _codes,
    _exclude,
    blas_tolerance,
    block_scores,
    candidate_columns,
    finish_scores,
    padded,
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
# Measured on fashion-small-2k (bench/bench_rows.py, README "Recommendation rows"): text
# weights where "Looks like this" keeps >= 0.85 of the purely visual rows' shape likeness
# and "other colours" reaches its articleType precision with >= 92% in another colour
DEFAULT_TEXT_WEIGHT = 0.35
DEFAULT_OTHER_TEXT_WEIGHT = 0.5
COLOUR_WORD_SHARE = 0.35  # of the similar row's text weight on colour words (measured)
DEFAULT_OTHER_COLOUR_QUANTILE_TEXT = 0.7  # with words (the text keeps the kind)
DEPARTMENT_PENALTY = 4.0  # more than any score's range: other departments come last
# the word signals (pipeline.text): words without colour words, and colour words
TEXT, COLOUR_WORDS = "text", "colour_words"
PAIR_SAMPLE = 20_000
TILES_PER_PART = 4  # top-k tiles per thread or Dask worker, where there are enough pairs
N_QUANTILES = 101


@dataclass(frozen=True)
class RowRule:
    """How one row's neighbours are scored and filtered."""

    key: str
    title: str
    shape: float
    colour: float
    max_colour: float | None = None
    text: float = 0.0
    colour_words: float = 0.0
    exclude_row: str | None = None  # an earlier row whose cards this row leaves out

    @property
    def words(self) -> tuple[tuple[str, float], ...]:
        """The weighted word signals of the rule."""
        return tuple((name, w) for name, w in ((TEXT, self.text),
                                               (COLOUR_WORDS, self.colour_words)) if w)

    @property
    def file(self) -> str:
        """The row's file in the precomputed folder (`similar` keeps neighbours.json)."""
        return row_file(self.key)

    def meta(self) -> dict[str, Any]:
        """The row's entry of meta.json's `rows` (score_quantiles are added by the build)."""
        out: dict[str, Any] = {
            "key": self.key,
            "title": self.title,
            "file": self.file,
            "weights": {"shape": round(self.shape, 6), "colour": round(self.colour, 6),
                        "text": round(self.text, 6),
                        "colour_words": round(self.colour_words, 6)},
            "max_colour": None if self.max_colour is None else round(self.max_colour, 6),
        }
        if self.exclude_row:
            out["exclude_row"] = self.exclude_row
        return out

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
            text=float(weights.get("text", 0.0)),
            colour_words=float(weights.get("colour_words", 0.0)),
            exclude_row=entry.get("exclude_row"),
        )

    def visual(self) -> RowRule:
        """The rule without its text weight (shape and colour rescaled to their share), for
        queries without words: an uploaded photo."""
        if not self.words:
            return self
        rest = self.shape + self.colour
        return RowRule(self.key, self.title, self.shape / rest, self.colour / rest,
                       self.max_colour, exclude_row=self.exclude_row)

    def scores(
        self, shape: np.ndarray, colour: np.ndarray | None, slack: float = 0.0,
        text: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The row's scores from shape, colour and text similarities (excluded: -inf);
        `slack` loosens the colour filter (candidates for exact re-scoring).

        Exact (float64) similarities are summed in float64 and rounded once; float32 blocks
        of the scan are summed in place (BLAS axpy: one pass per signal)."""
        words = [(w, text[name]) for name, w in self.words if text is not None and name in text]
        use_colour = self.colour != 0 and colour is not None
        if shape.dtype == np.float64 or not shape.flags.c_contiguous:
            if not use_colour:
                s64 = shape if self.shape == 1 else self.shape * shape
            else:
                s64 = self.shape * shape + self.colour * colour
            for w, sim in words:
                s64 = s64 + w * sim
            s = s64.astype(np.float32)
        else:
            s = np.multiply(shape, np.float32(self.shape), dtype=np.float32)
            for w, sim in ([(self.colour, colour)] if use_colour else []) + words:
                _axpy(w, sim, s)
        if self.max_colour is not None and colour is not None:
            s[colour > self.max_colour + slack] = -np.inf
        return s


def _axpy(a: float, x: np.ndarray, y: np.ndarray) -> None:
    """y += a * x in place for float32 blocks of one shape (BLAS saxpy where both are
    contiguous: one pass, no temporary)."""
    if x.dtype == np.float32 and x.flags.c_contiguous and y.flags.c_contiguous and x.size:
        from scipy.linalg.blas import saxpy

        out = saxpy(x.reshape(-1), y.reshape(-1), a=a)
        if np.shares_memory(out, y):
            return
        y[...] = out.reshape(y.shape)
        return
    y += np.float32(a) * x


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
    other_colour_quantile: float | None = None,
    seed: int = 0,
    text: Mapping[str, np.ndarray] | None = None,
    text_weight: float = DEFAULT_TEXT_WEIGHT,
    other_text_weight: float = DEFAULT_OTHER_TEXT_WEIGHT,
) -> list[RowRule]:
    """The rules of the rows `keys` for a catalog of unit `shape`, `colour` and `text`
    rows ({TEXT: words without colour words, COLOUR_WORDS: colour words (optional)};
    None: no words).

    Each weight applies to similarities standardised by their spread over random pairs.
    `other_colour_quantile` defaults to DEFAULT_OTHER_COLOUR_QUANTILE_TEXT with words and
    DEFAULT_OTHER_COLOUR_QUANTILE without.
    """
    unknown = [k for k in keys if k not in ROW_TITLES]
    if unknown:
        raise ValueError(f"unknown row {unknown[0]!r}; rows are {', '.join(ROW_KEYS)}")
    if not 0 <= colour_weight < 1:
        raise ValueError(f"colour weight {colour_weight:g}: must be at least 0 and below 1")
    for name, w in (("text weight", text_weight), ("other-colours text weight",
                                                    other_text_weight)):
        if not 0 <= w < 1:
            raise ValueError(f"{name} {w:g}: must be at least 0 and below 1")
    if other_colour_quantile is None:
        other_colour_quantile = (DEFAULT_OTHER_COLOUR_QUANTILE_TEXT if text
                                 else DEFAULT_OTHER_COLOUR_QUANTILE)
    if not 0 < other_colour_quantile < 1:
        raise ValueError(f"other-colour quantile {other_colour_quantile:g}: must be in (0, 1)")
    few = len(shape) < 2
    sd_shape = 1.0 if few else float(np.std(_pair_cosines(shape, seed))) or 1.0
    sd_text = {name: 1.0 if few else float(np.std(_pair_cosines(v, seed + 2))) or 1.0
               for name, v in (text or {}).items()}

    def blend(parts: dict[str, tuple[float, float]]) -> dict[str, float]:
        """{signal: (user weight, spread)} -> weights of the raw similarities, sum 1."""
        raw = {s: w / sd for s, (w, sd) in parts.items() if w > 0}
        total = sum(raw.values()) or 1.0
        return {s: raw.get(s, 0.0) / total for s in parts}

    max_colour = None
    tw = text_weight if text else 0.0
    share = COLOUR_WORD_SHARE if text and COLOUR_WORDS in text else 0.0
    words = {TEXT: (tw * (1 - share), sd_text.get(TEXT, 1.0)),
             COLOUR_WORDS: (tw * share, sd_text.get(COLOUR_WORDS, 1.0))}
    if few or colour is None:
        sim = blend({"shape": (1 - tw, sd_shape), **words})
        sim["colour"] = 0.0
    else:
        colour_pairs = _pair_cosines(colour, seed + 1)
        sd_colour = float(np.std(colour_pairs)) or 1.0
        sim = blend({"shape": ((1 - tw) * (1 - colour_weight), sd_shape),
                     "colour": ((1 - tw) * colour_weight, sd_colour), **words})
        max_colour = min(float(np.quantile(colour_pairs, other_colour_quantile)),
                         OTHER_COLOUR_CAP)
    ow = other_text_weight if text else 0.0
    other = blend({"shape": (1 - ow, sd_shape), TEXT: (ow, sd_text.get(TEXT, 1.0))})
    rules = []
    for key in dict.fromkeys(keys):
        if key == SIMILAR:
            rules.append(RowRule(key, ROW_TITLES[key], sim["shape"], sim["colour"],
                                 text=sim[TEXT], colour_words=sim[COLOUR_WORDS]))
        elif colour is not None:
            rules.append(RowRule(key, ROW_TITLES[key], other["shape"], 0.0, max_colour,
                                 text=other[TEXT],
                                 exclude_row=SIMILAR if SIMILAR in keys else None))
    return rules


def prefer_bonus(
    scores: np.ndarray, same: np.ndarray | None, margin: float
) -> np.ndarray:
    """Scores to rank by: `margin` added where the neighbour shares the query's value."""
    if same is None or margin <= 0:
        return scores
    return np.where(same, scores + np.float32(margin), scores)


def _uses_colour(rules: Sequence[RowRule], colour: np.ndarray | None) -> bool:
    return colour is not None and any(r.colour or r.max_colour is not None for r in rules)


def _text_signals(rules: Sequence[RowRule], inputs: RowInputs) -> list[str]:
    """The text vectors some rule weighs (and the inputs have)."""
    if not inputs.text:
        return []
    return sorted({name for r in rules for name, _ in r.words if name in inputs.text})


def _codes_of(codes: np.ndarray, index: slice | np.ndarray) -> np.ndarray:
    """Codes of columns: a slice gives a (1, width) row, an index array its own shape."""
    if isinstance(index, slice):
        return codes[index][None, :]
    return codes[np.maximum(index, 0)]


def _ranking(
    scores: np.ndarray, inputs: RowInputs, rows: slice, cols: slice | np.ndarray,
    margin: float,
) -> np.ndarray:
    """Scores to rank by: the prefer bonus, and the department penalty for products of a
    department that does not go with the query's."""
    if inputs.prefer_codes is not None:
        same = inputs.prefer_codes[rows][:, None] == _codes_of(inputs.prefer_codes, cols)
        scores = prefer_bonus(scores, same, margin)
    if inputs.dept_codes is not None and inputs.dept_table is not None:
        ok = inputs.dept_table[inputs.dept_codes[rows][:, None],
                               _codes_of(inputs.dept_codes, cols)]
        if not ok.all():
            scores = np.where(ok, scores, scores - np.float32(DEPARTMENT_PENALTY))
    return scores


def _block_similarities(
    rules: Sequence[RowRule], inputs: RowInputs, rows: slice, cols: slice
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Colour and text similarities of a block (None / {} where no rule uses them)."""
    colour = inputs.colour if _uses_colour(rules, inputs.colour) else None
    s_colour = colour[rows] @ colour[cols].T if colour is not None else None
    assert inputs.text is not None or not _text_signals(rules, inputs)
    s_text = {name: inputs.text[name][rows] @ inputs.text[name][cols].T  # type: ignore[index]
              for name in _text_signals(rules, inputs)}
    return s_colour, s_text


def _excluded(cand: np.ndarray, exclude: np.ndarray | None) -> np.ndarray | None:
    """Where candidate columns (b, w) are among each row's excluded columns (b, e)."""
    if exclude is None or not exclude.size or not cand.size:
        return None
    return (cand[:, :, None] == exclude[:, None, :]).any(axis=2) & (cand >= 0)


def _exact_rows(
    rule: RowRule,
    inputs: RowInputs,
    start: int,
    cand: np.ndarray,
    k: int,
    metric: Metric,
    margin: float,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of rows start.. among their candidate columns, ranked by exact scores (with
    the prefer bonus and department penalty; `exclude`d columns left out); returns
    (indices, the rule's own scores)."""
    if cand.shape[1] == 0:  # nothing left (e.g. every other product excluded)
        return (np.full((len(cand), k), -1, dtype=np.int64),
                np.full((len(cand), k), np.nan, dtype=np.float32))
    colour = inputs.colour if _uses_colour([rule], inputs.colour) else None
    exact_colour = pair_scores(colour, start, cand, "cosine") if colour is not None else None
    exact_text = {name: pair_scores(inputs.text[name], start, cand, "cosine")  # type: ignore[index]
                  for name in _text_signals([rule], inputs)}
    exact = rule.scores(pair_scores(inputs.shape, start, cand, metric), exact_colour,
                        text=exact_text)
    ranking = _ranking(exact, inputs, slice(start, start + len(cand)), cand, margin)
    drop = _excluded(cand, exclude)
    if drop is not None:
        ranking = np.where(drop, -np.inf, ranking)
    idx, _ = top_k_of_candidates(cand, ranking, k)
    pos = np.argmax(cand[:, None, :] == idx[:, :, None], axis=2)  # idx's place in cand
    picked = np.take_along_axis(exact, pos, axis=1)
    return idx, np.where(idx >= 0, picked, np.nan).astype(np.float32)


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
    """Top-k of query rows [start, stop) for every rule: [(indices, scores)] in rule order
    (shape and colour, prefer and excluded rows; no text or departments: the benches' and
    tests' reference of one block of rows against everything).

    The shape block is computed once and shared by the rules; scores are the rules' own
    ('higher is closer'; `finish_scores` turns Euclidean ones into distances). The block's
    float32 matmul only picks candidates (`candidate_columns`); they are ranked by exact
    scores (`pair_scores`), so every engine and BLAS gives the same bytes.
    """
    inputs = RowInputs(shape, sq_norms, colour, group_codes, dup_codes, prefer_codes)
    s_shape = block_scores(shape, sq_norms, start, stop, metric)
    s_colour, _ = _block_similarities(rules, inputs, slice(start, stop), slice(None))
    tolerance = blas_tolerance(sq_norms)
    out = []
    found: dict[str, np.ndarray] = {}
    for rule in rules:
        loose = _ranking(rule.scores(s_shape, s_colour, tolerance), inputs,
                         slice(start, stop), slice(None), margin)
        exclude = found.get(rule.exclude_row or "")
        if exclude is not None:
            rows = np.repeat(np.arange(len(loose)), exclude.shape[1])
            ok = exclude.ravel() >= 0
            loose[rows[ok], exclude.ravel()[ok]] = -np.inf
        cand = candidate_columns(loose, start, k, tolerance, group_codes, dup_codes)
        idx, scores = _exact_rows(rule, inputs, start, cand, k, metric, margin, exclude)
        found[rule.key] = idx
        out.append((idx, scores))
    return out


class _Running:
    """Each row's m best (block score, column) pairs seen so far, merged block by block and
    kept per block of rows (keyed by its first row), so a part of the rows travels alone."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def merge(self, row0: int, col0: int, block: np.ndarray) -> None:
        """Fold a block of scores (rows row0.., columns col0..) into the rows' best m."""
        b_c = block.shape[1]
        m = self.m
        if b_c > m:
            part = np.argpartition(-block, m - 1, axis=1)[:, :m]
            vals, cols = np.take_along_axis(block, part, axis=1), part + col0
        else:
            vals, cols = block, np.broadcast_to(np.arange(col0, col0 + b_c), block.shape)
        self.merge_best(row0, vals, cols)

    def merge_best(self, row0: int, vals: np.ndarray, cols: np.ndarray) -> None:
        """Fold candidate (score, column) pairs of rows row0.. into the rows' best m."""
        m = self.m
        if row0 not in self.blocks:
            self.blocks[row0] = (np.full((len(vals), m), -np.inf, dtype=np.float32),
                                 np.full((len(vals), m), -1, dtype=np.int64))
        old_vals, old_cols = self.blocks[row0]
        all_vals = np.concatenate([old_vals, vals], axis=1)
        all_cols = np.concatenate([old_cols, cols], axis=1)
        keep = np.argpartition(-all_vals, m - 1, axis=1)[:, :m]
        self.blocks[row0] = (np.take_along_axis(all_vals, keep, axis=1),
                             np.take_along_axis(all_cols, keep, axis=1))


def _candidates(
    vals: np.ndarray, cols: np.ndarray, k: int, tolerance: float,
    exclude: np.ndarray | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Rows' candidates within `tolerance` of their k-th best kept block score (`exclude`d
    columns left out), and the rows whose kept pairs were all that close (more may have
    been dropped: scan them whole)."""
    lowest = vals.min(axis=1)
    drop = _excluded(cols, exclude)
    if drop is not None:
        vals = np.where(drop, -np.inf, vals)
    kth = -np.partition(-vals, k - 1, axis=1)[:, k - 1]
    threshold = np.where(np.isfinite(kth), kth - np.float32(tolerance), -np.inf)
    keep = (vals >= threshold[:, None]) & np.isfinite(vals)
    unsure = np.flatnonzero(np.isfinite(lowest) & (lowest >= threshold))
    return [cols[r, keep[r]] for r in range(len(vals))], unsure


def _pair_block(
    rule: RowRule,
    s_shape: np.ndarray,
    s_colour: np.ndarray | None,
    s_text: Mapping[str, np.ndarray],
    inputs: RowInputs,
    rows: slice,
    cols: slice,
    margin: float,
    tolerance: float,
) -> np.ndarray:
    """A rule's ranking scores of block (rows, cols) with exclusions set to -inf."""
    r = _ranking(rule.scores(s_shape, s_colour, tolerance, s_text), inputs, rows, cols, margin)
    if rows == cols:
        np.fill_diagonal(r, -np.inf)
    if inputs.dup_codes is not None:
        r[inputs.dup_codes[rows, None] == inputs.dup_codes[None, cols]] = -np.inf
    if inputs.group_codes is not None:
        r[inputs.group_codes[rows, None] != inputs.group_codes[None, cols]] = -np.inf
    return r


@dataclass
class RowInputs:
    """What every block of the rows' top-k reads: prepared features and codes."""

    shape: np.ndarray
    sq_norms: np.ndarray | None
    colour: np.ndarray | None
    group_codes: np.ndarray | None
    dup_codes: np.ndarray | None
    prefer_codes: np.ndarray | None
    text: dict[str, np.ndarray] | None = None  # {TEXT, COLOUR_WORDS}: unit rows
    dept_codes: np.ndarray | None = None  # pipeline.departments.compatibility_codes
    dept_table: np.ndarray | None = None  # which codes go together (symmetric, bool)

    @classmethod
    def prepare(
        cls,
        shape: np.ndarray,
        colour: np.ndarray | None,
        metric: Metric,
        groups: Sequence[str] | None = None,
        duplicate_keys: Sequence[str] | None = None,
        prefer: Sequence[str] | None = None,
        text: Mapping[str, np.ndarray] | None = None,
        departments: Sequence[str | None] | None = None,
    ) -> RowInputs:
        """Normalise features for the metric and turn keys into integer codes
        (`departments`: each product's, None for unknown; see pipeline.departments)."""
        x, sq = prepare_features(shape, metric)
        n = len(x)
        dept_codes = dept_table = None
        if departments is not None and len({d for d in departments if d}) > 1:
            from .departments import compatibility_codes

            codes, table = compatibility_codes(departments)
            dept_codes, dept_table = np.asarray(codes, np.int64), np.asarray(table, bool)
        return cls(x, sq, None if colour is None else np.asarray(colour, np.float32),
                   _codes(groups, n), _codes(duplicate_keys, n), _codes(prefer, n),
                   {name: np.asarray(v, np.float32) for name, v in text.items()} if text
                   else None, dept_codes, dept_table)


def block_pairs(n: int, block: int) -> list[tuple[int, int]]:
    """The (row block, column block) starts of the symmetric top-k: each pair once."""
    starts = range(0, n, block)
    return [(i, j) for i in starts for j in starts if j >= i]


def _kept(k: int, n: int, rule: RowRule | None = None) -> tuple[int, int]:
    """(neighbours that exist, candidates kept per row before exact re-scoring; a rule
    that leaves out an earlier row's k cards keeps k more)."""
    kk = min(k, n - 1)
    extra = k if rule is not None and rule.exclude_row else 0
    return kk, min(kk + RESCORE_EXTRA + extra, n)


def _scan(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    pairs: Iterable[tuple[int, int]],
    running: Sequence[_Running],
    metric: Metric,
    margin: float,
    block: int,
) -> None:
    """Fold the block `pairs` into each rule's `running` best, both ways."""
    n = len(inputs.shape)
    tolerance = blas_tolerance(inputs.sq_norms)
    for i0, j0 in pairs:
        rows, cols = slice(i0, min(i0 + block, n)), slice(j0, min(j0 + block, n))
        s_shape = block_scores(inputs.shape, inputs.sq_norms, rows.start, rows.stop, metric,
                               cols)
        s_colour, s_text = _block_similarities(rules, inputs, rows, cols)
        for rule, best in zip(rules, running, strict=True):
            r = _pair_block(rule, s_shape, s_colour, s_text, inputs, rows, cols, margin,
                            tolerance)
            best.merge(i0, j0, r)
            if j0 != i0:
                best.merge(j0, i0, np.ascontiguousarray(r.T))


def scan_block_pairs(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    pairs: Sequence[tuple[int, int]],
    k: int,
    metric: Metric = "cosine",
    margin: float = DEFAULT_PREFER_MARGIN,
    block: int = 1024,
) -> list[dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Each rule's best (block score, column) pairs of every row the block `pairs` touch,
    per block of rows ({first row: (scores, columns)}): every pair multiplied once and
    scanned both ways. The first half of `rows_top_k`, for a Dask task's share of pairs."""
    running = running_best(rules, k, len(inputs.shape))
    _scan(rules, inputs, pairs, running, metric, margin, block)
    return [best.blocks for best in running]


def finish_rows(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    start: int,
    bests: Sequence[tuple[np.ndarray, np.ndarray]],
    k: int,
    metric: Metric = "cosine",
    margin: float = DEFAULT_PREFER_MARGIN,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k of the rows start.. for every rule from their best block scores (`bests`, one
    (scores, columns) pair per rule): candidates within the BLAS tolerance, ranked by exact
    scores; scores not yet `finish_scores`-ed. The second half of `rows_top_k`. A rule
    with `exclude_row` leaves out the cards that earlier rule found for the same rows."""
    n = len(inputs.shape)
    tolerance = blas_tolerance(inputs.sq_norms)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    found: dict[str, np.ndarray] = {}
    for rule, (vals, cols) in zip(rules, bests, strict=True):
        kk, _ = _kept(k, n, rule)
        exclude = found.get(rule.exclude_row or "")
        cands, unsure = _candidates(vals, cols, kk, tolerance, exclude)
        for r in unsure:  # near-ties beyond the kept pairs: this row against all
            row_exclude = None if exclude is None else exclude[r : r + 1]
            (full,) = _row_candidates(rule, inputs, start + r, k, metric, margin, tolerance,
                                      row_exclude)
            cands[r] = full
        idx, scores = _exact_rows(rule, inputs, start, padded(cands), k, metric, margin,
                                  exclude)
        short = np.flatnonzero((idx[:, :kk] < 0).any(axis=1))
        if len(short):  # a candidate fell to the exact colour filter: first every kept pair
            short = _fill_from_kept(rule, inputs, start, vals, cols, short, idx, scores, kk,
                                    k, metric, margin, tolerance, exclude)
        if len(short):  # still not sure: the columns that can reach the top-k
            for r in short:
                row_exclude = None if exclude is None else exclude[r : r + 1]
                (every,) = _row_candidates(rule, inputs, start + r, k, metric, margin,
                                           tolerance, row_exclude, every=True)
                one = None if exclude is None else exclude[r : r + 1]
                idx[r], scores[r] = (a[0] for a in _exact_rows(
                    rule, inputs, start + r, every[None, :], k, metric, margin, one))
        found[rule.key] = idx
        out.append((idx, scores))
    return out


def _fill_from_kept(
    rule: RowRule, inputs: RowInputs, start: int, vals: np.ndarray, cols: np.ndarray,
    rows: np.ndarray, idx: np.ndarray, scores: np.ndarray, kk: int, k: int, metric: Metric,
    margin: float, tolerance: float, exclude: np.ndarray | None,
) -> np.ndarray:
    """Rank `rows` (short after the exact filter) among all their kept pairs, in place;
    returns the rows this cannot settle: those whose k-th ranking score is not above
    every pair the scan dropped (the lowest kept block score plus the tolerance)."""
    sub = padded([cols[r][np.isfinite(vals[r])] for r in rows])
    unsure = []
    for j, r in enumerate(rows):
        one = None if exclude is None else exclude[r : r + 1]
        i, sc = (a[0] for a in _exact_rows(rule, inputs, start + r, sub[j : j + 1], k, metric,
                                           margin, one))
        lowest = vals[r].min()
        found = i[:kk] >= 0
        if found.all() and np.isfinite(lowest):
            rank = _ranking(sc[None, :kk], inputs, slice(start + r, start + r + 1),
                            i[None, :kk], margin)[0]
            settled = rank.min() >= lowest + tolerance
        else:  # fewer than kk: settled only when the scan kept every pair the row has
            settled = not np.isfinite(lowest)
        if settled:
            idx[r], scores[r] = i, sc
        else:
            unsure.append(r)
    return np.asarray(unsure, dtype=np.int64)


def running_best(rules: Sequence[RowRule], k: int, n: int) -> list[_Running]:
    """Each rule's empty running best, to merge `scan_block_pairs` results into."""
    return [_Running(_kept(k, n, rule)[1]) for rule in rules]



def merge_scan(
    merged: Sequence[_Running], found: Sequence[dict[int, tuple[np.ndarray, np.ndarray]]]
) -> None:
    """Fold one `scan_block_pairs` result (per rule, per block of rows) into `merged`."""
    for best, blocks in zip(merged, found, strict=True):
        for row0, (vals, cols) in blocks.items():
            best.merge_best(row0, vals, cols)


def pair_tiles(n: int, block: int, parts: int) -> list[list[tuple[int, int]]]:
    """The block pairs of the symmetric top-k (each once), grouped into tiles of S x S
    blocks of the upper triangle: at least TILES_PER_PART per part (a thread, a Dask
    worker) where the catalog has that many block pairs. A tile touches only 2·S blocks of
    rows, so what its scan gives back stays small."""
    n_blocks = -(-n // block)
    tiles_wanted = TILES_PER_PART * max(1, parts)
    side = n_blocks  # the largest tile side that still gives enough tiles
    while side > 1 and (g := -(-n_blocks // side)) * (g + 1) // 2 < tiles_wanted:
        side -= 1
    groups = [range(g, min(g + side, n_blocks)) for g in range(0, n_blocks, side)]
    tiles = []
    for a, rows in enumerate(groups):
        for cols in groups[a:]:
            tiles.append([(i * block, j * block) for i in rows for j in cols if j >= i])
    return tiles


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _scan_threaded(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    merged: Sequence[_Running],
    k: int,
    metric: Metric,
    margin: float,
    block: int,
    threads: int,
    progress: bool,
) -> None:
    """`scan_block_pairs` over tiles on `threads` threads, each with a 1-thread BLAS (the
    scan's numpy work runs without the GIL, so threads add up where one thread's scan, not
    the matmul, sets the pace), merged into `merged`; at most 2 tiles per thread wait."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    tiles = pair_tiles(len(inputs.shape), block, threads)
    bar = tqdm(total=len(tiles), desc="similarity", unit="tile", disable=not progress)
    pending = iter(tiles)
    with threadpool_limits(1), ThreadPoolExecutor(threads) as pool:
        def submit(tile: list[tuple[int, int]]) -> Any:
            return pool.submit(scan_block_pairs, rules, inputs, tile, k, metric, margin, block)

        running = {submit(t) for t in itertools.islice(pending, 2 * threads)}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                merge_scan(merged, fut.result())
                bar.update()
                nxt = next(pending, None)
                if nxt is not None:
                    running.add(submit(nxt))
    bar.close()


def rows_top_k(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    k: int,
    metric: Metric = "cosine",
    margin: float = DEFAULT_PREFER_MARGIN,
    block: int = 1024,
    progress: bool = False,
    threads: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact top-k of every product for every rule (peak O(N x (k + extra) + block^2)).

    Every rule is symmetric (cosines, the colour filter, the prefer bonus, groups and
    duplicates), so each pair of row blocks is multiplied once and scanned both ways: half
    the matmul of one block of rows against everything (`scan_block_pairs`), on `threads`
    threads (default: every CPU of this process) over tiles of block pairs. Candidates
    are then ranked by exact scores (`finish_rows`), so every engine and thread count
    gives the same bytes.
    """
    n = len(inputs.shape)
    out = [
        (np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan, dtype=np.float32))
        for _ in rules
    ]
    if min(k, n - 1) < 1:
        return [(idx, finish_scores(scores, metric)) for idx, scores in out]
    merged = running_best(rules, k, n)
    threads = threads or default_threads()
    pairs: Any = block_pairs(n, block)
    if threads > 1 and len(pairs) > 1:
        _scan_threaded(rules, inputs, merged, k, metric, margin, block, threads, progress)
    else:
        if progress:
            from tqdm import tqdm

            pairs = tqdm(pairs, desc="similarity", unit="block pair")
        _scan(rules, inputs, pairs, merged, metric, margin, block)
    for start in range(0, n, block):
        stop = min(start + block, n)
        found = finish_rows(rules, inputs, start, [best.blocks[start] for best in merged],
                            k, metric, margin)
        for (idx, scores), (bi, bs) in zip(out, found, strict=True):
            idx[start:stop], scores[start:stop] = bi, bs
    return [(idx, finish_scores(scores, metric)) for idx, scores in out]


def _row_candidates(
    rule: RowRule, inputs: RowInputs, row: int, k: int, metric: Metric, margin: float,
    tolerance: float, exclude: np.ndarray | None = None, every: bool = False,
) -> list[np.ndarray]:
    """One row's candidate columns from its whole row of scores (`candidate_columns`),
    `exclude`d columns (1, e) left out; `every`: all columns the rule does not exclude."""
    rows = slice(row, row + 1)
    s_shape = block_scores(inputs.shape, inputs.sq_norms, row, row + 1, metric)
    s_colour, s_text = _block_similarities([rule], inputs, rows, slice(None))
    loose = _ranking(rule.scores(s_shape, s_colour, tolerance, s_text), inputs, rows,
                     slice(None), margin)
    if exclude is not None:
        ex = exclude[exclude >= 0]
        loose[0, ex] = -np.inf
    if every:  # the columns that can reach the exact top-k, whatever the colour filter
        strict = _ranking(rule.scores(s_shape, s_colour, -tolerance, s_text), inputs, rows,
                          slice(None), margin)
        loose = loose.copy()
        for s in (loose, strict):
            _exclude(s, row, inputs.group_codes, inputs.dup_codes)
            if exclude is not None:
                s[0, exclude[exclude >= 0]] = -np.inf
        sure = strict[0][np.isfinite(strict[0])]  # surely past the filter
        kk = min(k, len(sure))
        kth = -np.partition(-sure, kk - 1)[kk - 1] if kk >= min(k, len(loose[0]) - 1) and kk \
            else -np.inf
        return [np.flatnonzero(np.isfinite(loose[0]) & (loose[0] >= kth - tolerance))]
    cand = candidate_columns(loose, row, k, tolerance, inputs.group_codes, inputs.dup_codes)
    return [c[c >= 0] for c in cand]


def rows_top_k_approx(
    rules: Sequence[RowRule],
    inputs: RowInputs,
    k: int,
    margin: float = DEFAULT_PREFER_MARGIN,
    block: int = 1024,
    nprobe: int = 32,
    seed: int = 0,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
    """Top-k of every rule from a faiss index's candidates (cosine only), ranked by the
    exact scores `rows_top_k` uses; also each rule's index description.

    A rule blending signals searches [sqrt(w_shape)·shape, sqrt(w_colour)·colour,
    sqrt(w_text)·text, ...], whose inner product is the rule's score; filters, departments,
    groups, duplicates and excluded rows are applied to the candidates, so those rules
    fetch more of them.
    """
    from .ann import faiss_candidates

    n = len(inputs.shape)
    colour = inputs.colour if _uses_colour(rules, inputs.colour) else None
    out, described = [], []
    found: dict[str, np.ndarray] = {}
    for rule in rules:
        parts = [np.sqrt(rule.shape) * inputs.shape]
        if rule.colour and colour is not None:
            parts.append(np.sqrt(rule.colour) * colour)
        weights = dict(rule.words)
        for name in _text_signals([rule], inputs):
            parts.append(np.sqrt(weights[name]) * inputs.text[name])  # type: ignore[index]
        vectors = np.hstack(parts).astype(np.float32) if len(parts) > 1 else inputs.shape
        filtered = (rule.max_colour is not None or inputs.group_codes is not None
                    or inputs.dept_codes is not None or rule.exclude_row is not None)
        width = (k + RESCORE_EXTRA) * (8 if filtered else 2) + 1  # +1: the query itself
        cand, meta = faiss_candidates(vectors, width, nprobe, seed)
        rows = np.arange(n)[:, None]
        drop = (cand < 0) | (cand == rows)
        safe = np.maximum(cand, 0)
        for codes, same_is_out in ((inputs.dup_codes, True), (inputs.group_codes, False)):
            if codes is not None:
                drop |= (codes[safe] == codes[:, None]) == same_is_out
        cand = np.where(drop, -1, cand)
        exclude = found.get(rule.exclude_row or "")
        idx = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), np.nan, dtype=np.float32)
        for start in range(0, n, block):
            stop = min(start + block, n)
            idx[start:stop], scores[start:stop] = _exact_rows(
                rule, inputs, start, cand[start:stop], k, "cosine", margin,
                None if exclude is None else exclude[start:stop])
        found[rule.key] = idx
        out.append((idx, scores))
        described.append(meta)
    return out, described



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
