"""The build: catalog folder -> features (cached) -> exact top-k -> precomputed folder."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .ann import DEFAULT_NPROBE, INDEXES
from .catalog import CatalogError, CatalogRow, read_catalog
from .colour import COLOUR_VERSION, centre_colours
from .departments import DepartmentSource, find_department_source, product_departments
from .features import (
    DEFAULT_BATCH,
    FeatureCache,
    cache_key,
    default_cache_dir,
    embed_items,
    unique_items,
)
from .images import ImageError, ResizePolicy, load_image, thumbnail_jpeg
from .models import (
    FeatureExtractor,
    bf16_cpu_flags,
    file_sha256,
    load_extractor,
    resolve_precision,
)
from .precomputed import COLOUR_MEAN_FILE, COLOURS_FILE, EMBEDDINGS_FILE, THUMBS_DIR
from .projection import project_2d
from .rows import (
    COLOUR_WORDS,
    DEFAULT_OTHER_TEXT_WEIGHT,
    DEFAULT_PREFER_MARGIN,
    DEFAULT_TEXT_WEIGHT,
    ROW_KEYS,
    SIMILAR,
    TEXT,
    RowInputs,
    RowRule,
    default_colour_weight,
    plan_rows,
    rows_top_k,
    rows_top_k_approx,
    score_quantiles,
)
from .similarity import DEFAULT_BLOCK, Metric, finish_scores, l2_normalise
from .text import TEXT_DIMS, product_text, text_signals
from .whitening import (
    NOVELTY_QUANTILE,
    WHITEN_DIMS,
    WHITENING_FILE,
    Whitening,
    fit_whitening,
    novelty_threshold,
)
from .writer import precomputed_meta, remove_stale_temporaries, thumb_ref, write_precomputed

PAIRWISE_SUFFIXES = (".csv", ".pkl", ".pickle", ".npy")
SLUG_BUDGET_MB = 300.0  # of Heroku's 500 MB slug, leaving room for the installed packages


class BuildError(RuntimeError):
    """Nothing usable remains to build from."""


@dataclass
class BuildOptions:
    """Everything `python -m pipeline build` takes."""

    catalog: Path
    out: Path
    model: str = "vgg16"
    weights: str = "imagenet"
    metadata: Path | None = None
    id_column: str = "id"
    image_column: str | None = None
    title_column: str | None = None
    k: int = 10
    metric: Metric = "cosine"
    group_by: str | None = None
    rows: tuple[str, ...] | None = None  # default: ROW_KEYS (cosine), similar (euclidean)
    colour_weight: float | None = None  # default: DEFAULT_COLOUR_WEIGHT (cosine), 0
    other_colour_quantile: float | None = None  # default: rows.plan_rows's
    text_weight: float = DEFAULT_TEXT_WEIGHT  # 0: visual rows only
    other_text_weight: float = DEFAULT_OTHER_TEXT_WEIGHT
    text_dims: int = TEXT_DIMS
    department: str = "auto"  # auto | none | COLUMN (pipeline.departments)
    whiten: bool = True
    whiten_dims: int = WHITEN_DIMS
    prefer: str | None = None
    prefer_margin: float = DEFAULT_PREFER_MARGIN
    batch: int = DEFAULT_BATCH
    resize: ResizePolicy = "pad"
    precision: str = "float32"  # auto | float32 | bfloat16 (models.resolve_precision)
    cache_dir: Path | None = None
    block: int = DEFAULT_BLOCK
    index: str = "exact"  # or "faiss": approximate candidates (pipeline.ann)
    nprobe: int = DEFAULT_NPROBE
    engine: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    export_pairwise: Path | None = None
    progress: bool = True
    seed: int = 0
    thumb_base_url: str | None = None
    slug_budget_mb: float = SLUG_BUDGET_MB


@dataclass
class BuildSummary:
    """Counts of a finished build, printed as its last line."""

    out: Path
    n_products: int
    embedded_now: int
    from_cache: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    slug_bytes: int = 0
    slug_budget_mb: float = SLUG_BUDGET_MB
    external_thumbs: bool = False
    precision: str = "float32"
    precision_reason: str = ""

    def line(self) -> str:
        """The one-line summary of the run."""
        return (
            f"{self.n_products} products, {self.embedded_now} embedded now, "
            f"{self.from_cache} from cache, {len(self.skipped)} skipped, "
            f"{self.seconds:.1f} s -> {self.out}"
        )

    def precision_line(self) -> str:
        """Which compute precision the model ran in, and why."""
        return f"precision: {self.precision}" + (
            f" ({self.precision_reason})" if self.precision_reason else "")

    def slug_line(self) -> str:
        """How much of a Heroku slug the folder takes (what static serving needs of it)."""
        left_out = "the .npy/.npz arrays" + (
            f" and {THUMBS_DIR}/" if self.external_thumbs else "")
        return (
            f"slug size of {self.out}: {_megabytes(self.slug_bytes)} "
            f"(uncompressed, without {left_out})"
        )

    def slug_warning(self) -> str | None:
        """A warning line when the slug size is over the budget, else None."""
        if self.slug_bytes <= self.slug_budget_mb * 1e6:
            return None
        hint = (
            "" if self.external_thumbs
            else f"; host {THUMBS_DIR}/ elsewhere with --thumb-base-url URL"
        )
        return (
            f"warning: {self.out} takes {_megabytes(self.slug_bytes)} of the slug, over the "
            f"{self.slug_budget_mb:g} MB budget (--slug-budget-mb){hint}"
        )


def _hash_rows(rows: list[CatalogRow]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    shas: dict[str, str] = {}
    skipped: list[dict[str, Any]] = []
    for r in rows:
        try:
            shas[r.id] = file_sha256(r.image)
        except FileNotFoundError:
            skipped.append({"id": r.id, "image": str(r.image), "error": "image file not found"})
        except IsADirectoryError:
            skipped.append({"id": r.id, "image": str(r.image), "error": "image path is a folder"})
        except OSError as e:
            error = f"unreadable ({e.strerror})"
            skipped.append({"id": r.id, "image": str(r.image), "error": error})
    return shas, skipped


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def thumb_base_url(url: str) -> str:
    """`--thumb-base-url`, checked (http or https, a host, no query) and ending in one slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CatalogError(f"--thumb-base-url {url}: must be an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise CatalogError(f"--thumb-base-url {url}: must not have a query or fragment")
    return url.rstrip("/") + "/"


def slug_size(folder: Path, external_thumbs: bool = False) -> int:
    """Bytes of the folder that a Heroku slug holds: all but the arrays only dynamic mode
    reads (.npy, .npz; left out by .slugignore) and thumbs/ when products.json points at
    thumbnails hosted elsewhere."""
    top = os.fspath(folder)
    skip = {os.path.join(top, name) for name in (EMBEDDINGS_FILE, COLOURS_FILE,
                                                  COLOUR_MEAN_FILE, WHITENING_FILE)}
    if external_thumbs:
        skip.add(os.path.join(top, THUMBS_DIR))
    total = 0
    for here, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(here, d) not in skip]
        for name in files:
            path = os.path.join(here, name)
            if path not in skip:
                total += os.lstat(path).st_size
    return total


def product_record(
    row: CatalogRow, sha: str, xy: np.ndarray, thumb_base: str | None = None
) -> dict[str, Any]:
    """The products.json entry of one product (`thumb_base`: see `writer.thumb_ref`)."""
    return {
        "id": row.id,
        "title": row.title,
        "price": row.price,
        "currency": row.currency,
        "product_url": row.product_url,
        "thumb": thumb_ref(row.id, thumb_base),
        "sha256": sha,
        "attrs": dict(sorted(row.attrs.items())),
        "xy": [round(float(xy[0]), 4), round(float(xy[1]), 4)],
    }


def neighbours_json(
    ids: list[str], idx: np.ndarray, scores: np.ndarray
) -> dict[str, list[list[Any]]]:
    """{id: [[neighbour_id, score], ...]} from top-k index/score arrays (padding dropped)."""
    out: dict[str, list[list[Any]]] = {}
    for i, pid in enumerate(ids):
        out[pid] = [
            [ids[j], round(float(s), 6)]
            for j, s in zip(idx[i].tolist(), scores[i].tolist(), strict=True)
            if j >= 0
        ]
    return out


class DaskSession:
    """One Dask client for a whole build, opened when a stage first needs it (a LocalCluster
    starts its worker processes once, not once per stage) and closed with the build."""

    def __init__(self, opts: BuildOptions, stack: contextlib.ExitStack) -> None:
        self.opts, self.stack, self._client = opts, stack, None

    def client(self) -> Any:
        """The build's client (opened now if this is the first stage to ask)."""
        if self._client is None:
            from .dask_engine import dask_client

            self._client = self.stack.enter_context(
                dask_client(self.opts.scheduler, self.opts.workers))
        return self._client


def _features(
    opts: BuildOptions, extractor: FeatureExtractor, shas: dict[str, str], paths: dict[str, Path],
    dask: DaskSession | None = None,
    checked: bool = False,
) -> tuple[FeatureCache, dict[str, str], int, int]:
    """The cache holding every image's features and colours (cached + newly embedded),
    errors per sha256, counts (`checked`: the Dask workers hold the model already)."""
    wanted = set(shas.values())
    key = cache_key(extractor.key, opts.resize, extractor.identity.get("precision", "float32"))
    cache = FeatureCache.open(opts.cache_dir or default_cache_dir(), key, wanted)
    cached = len(wanted & cache.features.keys())
    missing = unique_items(
        (sha, paths[pid]) for pid, sha in sorted(shas.items()) if sha not in cache.features
    )
    errors: dict[str, str] = {}
    if missing:
        # new features reach cache.features through on_shard
        if dask is not None:
            from .dask_engine import embed_on_dask

            _, errors = embed_on_dask(
                dask.client(), missing, opts.model, opts.weights, opts.seed,
                extractor.input_size, opts.resize, opts.batch, on_shard=cache.save,
                progress=opts.progress, precision=extractor.identity.get("precision", "float32"),
                expected=extractor.identity, checked=checked,
            )
        else:
            _, _, errors = embed_items(
                missing, extractor.embed, extractor.input_size, opts.resize, opts.batch,
                on_shard=cache.save, progress=opts.progress,
            )
    return cache, errors, len(missing) - len(errors), cached


@dataclass
class FoundRows:
    """The neighbour rows of a build and what produced them."""

    shape: np.ndarray  # the unit (whitened) shape features: embeddings.npy
    colours: np.ndarray | None  # the centred unit colour descriptors: colours.npy
    colour_mean: np.ndarray | None  # colour_mean.npy
    rules: list[RowRule]
    neighbours: dict[str, dict[str, list[list[Any]]]]
    rows_meta: list[dict[str, Any]]
    whitening: Whitening | None
    colour_meta: dict[str, Any] | None
    prefer_meta: dict[str, Any] | None
    index_meta: dict[str, Any] = field(default_factory=lambda: {"kind": "exact"})
    text_meta: dict[str, Any] | None = None
    department_meta: dict[str, Any] | None = None
    upload_meta: dict[str, Any] | None = None


def _check_columns(opts: BuildOptions, rows: list[CatalogRow]) -> None:
    department = opts.department if opts.department not in ("auto", "none") else None
    for column, flag in ((opts.group_by, "--group-by"), (opts.prefer, "--prefer"),
                         (department, "--department")):
        if column and not any(column in r.attrs for r in rows):
            attrs = ", ".join(sorted({a for r in rows for a in r.attrs})) or "none"
            raise CatalogError(f"{flag} {column!r}: no such column (attributes: {attrs})")


def _check_row_options(opts: BuildOptions) -> None:
    if opts.rows is not None and (not opts.rows or opts.rows[0] != SIMILAR):
        raise CatalogError(f"--rows {','.join(opts.rows)}: the first row must be {SIMILAR}")
    if opts.metric == "euclidean" and (opts.rows not in (None, (SIMILAR,)) or opts.colour_weight):
        raise CatalogError("colour rows and --colour-weight need --metric cosine")
    for flag, w in (("--text-weight", opts.text_weight),
                    ("--other-text-weight", opts.other_text_weight)):
        if not 0 <= w < 1:
            raise CatalogError(f"{flag} {w:g}: must be at least 0 and below 1")
    if opts.text_dims < 1:
        raise CatalogError(f"--text-dims {opts.text_dims}: must be at least 1")
    if opts.prefer_margin < 0:
        raise CatalogError(f"--prefer-margin {opts.prefer_margin:g}: must be at least 0")
    if opts.index not in INDEXES:
        raise CatalogError(f"--index {opts.index}: use one of {', '.join(INDEXES)}")
    if opts.index == "faiss" and opts.metric != "cosine":
        raise CatalogError("--index faiss needs --metric cosine")
    if opts.index == "faiss" and importlib.util.find_spec("faiss") is None:
        raise CatalogError("--index faiss needs faiss-cpu: pip install -e '.[index]'")


def _rows(
    opts: BuildOptions,
    kept: list[CatalogRow],
    shas: dict[str, str],
    matrix: np.ndarray,
    colours: np.ndarray,
    dask: DaskSession | None = None,
) -> FoundRows:
    """Whitening, row rules and the top-k of every row, on the chosen engine (Dask when
    `dask` is given)."""
    cosine = opts.metric == "cosine"
    whitening = fit_whitening(matrix, opts.whiten_dims) if opts.whiten and cosine else None
    colour_mean = colours.mean(axis=0) if cosine else None
    colours = centre_colours(colours, colour_mean) if colour_mean is not None else None
    if whitening is not None:
        shape = whitening.apply(matrix)
    else:
        shape = l2_normalise(matrix) if cosine else matrix
    words = None
    if cosine and (opts.text_weight > 0 or opts.other_text_weight > 0):
        words = text_signals([product_text(r.title, r.attrs) for r in kept], colours,
                             l2_normalise(shape), opts.text_dims, opts.seed)
    text = None
    if words is not None:
        text = {TEXT: words.text}
        if words.colour is not None:
            text[COLOUR_WORDS] = words.colour
    try:
        rules = plan_rows(
            opts.rows or (ROW_KEYS if cosine else (SIMILAR,)), l2_normalise(shape),
            colours,
            default_colour_weight(whitening is not None) if opts.colour_weight is None
            else opts.colour_weight,
            opts.other_colour_quantile, opts.seed, text, opts.text_weight,
            opts.other_text_weight,
        )
    except ValueError as e:
        raise CatalogError(str(e)) from None
    ids = [r.id for r in kept]
    groups = [r.attrs.get(opts.group_by, "") for r in kept] if opts.group_by else None
    prefer = [r.attrs.get(opts.prefer, "") for r in kept] if opts.prefer else None
    source = department_source(opts, kept)
    departments = (product_departments([r.title for r in kept], [r.attrs for r in kept],
                                       source) if source is not None else None)
    inputs = RowInputs.prepare(
        shape, colours, opts.metric, groups, [shas[i] for i in ids], prefer, text, departments
    )
    index_meta: dict[str, Any] = {"kind": "exact"}
    if opts.index == "faiss":  # on this machine, whatever the engine
        found, described = rows_top_k_approx(
            rules, inputs, opts.k, opts.prefer_margin, opts.block, opts.nprobe, opts.seed)
        index_meta = {**described[0], "rows": [d["candidates"] for d in described]}
        del index_meta["candidates"]
        found = [(idx, finish_scores(scores, opts.metric)) for idx, scores in found]
    elif dask is not None:
        from .dask_engine import rows_on_dask

        found = rows_on_dask(
            dask.client(), rules, inputs, opts.k, opts.metric, opts.prefer_margin, opts.block
        )
    else:
        found = rows_top_k(
            rules, inputs, opts.k, opts.metric, opts.prefer_margin, opts.block, opts.progress
        )
    neighbours = {}
    rows_meta = []
    for rule, (idx, scores) in zip(rules, found, strict=True):
        neighbours[rule.key] = neighbours_json(ids, idx, scores)
        rows_meta.append({**rule.meta(), "score_quantiles": score_quantiles(scores)})
    return FoundRows(
        shape=shape if cosine else l2_normalise(matrix),
        colours=colours,
        colour_mean=colour_mean,
        rules=rules,
        neighbours=neighbours,
        rows_meta=rows_meta,
        whitening=whitening,
        colour_meta={"version": COLOUR_VERSION, "file": COLOURS_FILE,
                     "mean_file": COLOUR_MEAN_FILE} if cosine else None,
        prefer_meta={"column": opts.prefer, "margin": opts.prefer_margin} if opts.prefer
        else None,
        index_meta=index_meta,
        text_meta=words.meta(words.text.shape[1]) if words is not None else None,
        department_meta=source.meta() if source is not None else None,
        upload_meta=_upload_meta(matrix, whitening, opts),
    )


def _upload_meta(
    matrix: np.ndarray, whitening: Whitening | None, opts: BuildOptions
) -> dict[str, Any] | None:
    """meta.json's `upload`: how photo search tells a photo that looks like nothing in the
    catalog (needs the whitening's subspace; None without it)."""
    if whitening is None:
        return None
    threshold = novelty_threshold(matrix, whitening.dims, whitening.reg, opts.seed)
    if threshold is None:
        return None
    return {"method": "pca-residual", "max_residual": threshold,
            "quantile": NOVELTY_QUANTILE}


def department_source(opts: BuildOptions, rows: list[CatalogRow]) -> DepartmentSource | None:
    """Where the build reads departments: `--department COLUMN`, none, or (auto) the rule
    of `pipeline.departments`, unless `--prefer` or `--group-by` chose a column."""
    if opts.department == "none":
        return None
    titles, attrs = [r.title for r in rows], [r.attrs for r in rows]
    if opts.department != "auto":
        found = product_departments(titles, attrs, DepartmentSource("column",
                                                                    opts.department, 0.0))
        coverage = sum(1 for d in found if d) / max(len(rows), 1)
        return DepartmentSource("column", opts.department, coverage)
    if opts.prefer or opts.group_by:
        return None
    return find_department_source(titles, attrs)


def build(opts: BuildOptions, extractor: FeatureExtractor | None = None) -> BuildSummary:
    """Run the whole build; raise CatalogError / BuildError / ModelError on invalid input.

    With `engine="dask"` and a `scheduler` that cannot be reached: SchedulerError.
    """
    t0 = time.perf_counter()
    if opts.k < 1:
        raise CatalogError(f"--k {opts.k}: must be at least 1")
    if opts.export_pairwise and Path(opts.export_pairwise).suffix.lower() not in PAIRWISE_SUFFIXES:
        raise CatalogError(
            f"--export-pairwise {opts.export_pairwise}: use a .csv, .pkl or .npy file name"
        )
    _check_row_options(opts)
    thumb_base = thumb_base_url(opts.thumb_base_url) if opts.thumb_base_url else None
    if not opts.slug_budget_mb > 0:
        raise CatalogError(f"--slug-budget-mb {opts.slug_budget_mb:g}: must be above 0")
    precision = resolve_precision(opts.precision)
    for folder in remove_stale_temporaries(opts.out):
        print(f"removed {folder}: left by an earlier build that was killed", file=sys.stderr)
    rows = read_catalog(
        opts.catalog, opts.metadata, opts.id_column, opts.image_column, opts.title_column
    )
    _check_columns(opts, rows)
    stack = contextlib.ExitStack()
    dask = DaskSession(opts, stack) if opts.engine == "dask" else None
    with stack:
        warming = None
        if dask is not None and extractor is None:
            # the workers load the model while the catalog is hashed here: the client
            # only needs its identity, so it never loads TensorFlow
            from .dask_engine import WarmWorkers

            warming = WarmWorkers(dask.client(), opts.model, opts.weights, opts.seed,
                                  precision)
        shas, skipped = _hash_rows(rows)
        if not shas:
            raise BuildError(f"{opts.catalog}: none of the {len(rows)} images can be read")
        if extractor is None:
            extractor = (warming.extractor() if warming is not None
                         else load_extractor(opts.model, opts.weights, opts.seed, precision))
        paths = {r.id: r.image for r in rows}
        cache, errors, embedded_now, from_cache = _features(
            opts, extractor, shas, paths, dask, checked=warming is not None)
        kept: list[CatalogRow] = []
        for r in rows:
            if r.id not in shas:
                continue
            if shas[r.id] in errors:
                skipped.append({"id": r.id, "image": str(r.image), "error": errors[shas[r.id]]})
            else:
                kept.append(r)
        if not kept:
            raise BuildError(
                f"{opts.catalog}: no usable images ({len(skipped)} skipped, see above)")
        ids = [r.id for r in kept]
        matrix = np.stack([cache.features[shas[i]] for i in ids]).astype(np.float32)
        colours = np.stack([cache.colours[shas[i]] for i in ids]).astype(np.float32)
        found = _rows(opts, kept, shas, matrix, colours, dask)
    del colours
    shape = found.shape
    xy, projection = project_2d(shape, opts.seed)
    baseline = similarity_baseline(shape)
    products = [product_record(r, shas[r.id], xy[i], thumb_base) for i, r in enumerate(kept)]
    by_id = {r.id: r for r in kept}

    def thumb(p: dict[str, Any]) -> bytes:
        return thumbnail_jpeg(load_image(by_id[p["id"]].image))

    if opts.export_pairwise:
        export_pairwise(matrix, ids, opts.export_pairwise)
    meta = precomputed_meta(
        n_products=len(kept),
        k=opts.k,
        metric=opts.metric,
        group_by=opts.group_by,
        model={**extractor.identity, "resize": opts.resize},
        similarity_baseline=baseline,
        source={"catalog": str(opts.catalog), "n_rows": len(rows), "n_skipped": len(skipped)},
        thumb_base_url=thumb_base,
        rows=found.rows_meta,
        whitening=found.whitening.meta() if found.whitening else None,
        colour=found.colour_meta,
        prefer=found.prefer_meta,
        projection=projection,
        index=found.index_meta,
        text=found.text_meta,
        department=found.department_meta,
        upload=found.upload_meta,
    )
    skipped.sort(key=lambda s: s["id"])
    try:
        write_precomputed(
            opts.out, meta, products, found.neighbours[SIMILAR], shape, thumb, skipped,
            other_rows={rule.file: found.neighbours[rule.key] for rule in found.rules
                        if rule.key != SIMILAR},
            colours=found.colours,
            colour_mean=found.colour_mean,
            whitening=found.whitening,
        )
    except ImageError as e:  # the image changed between embedding and thumbnailing
        raise BuildError(f"thumbnail failed: {e}") from None
    if dask is not None:
        from .dask_engine import wait_closed

        wait_closed()
    return BuildSummary(
        out=Path(opts.out),
        n_products=len(kept),
        embedded_now=embedded_now,
        from_cache=from_cache,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        slug_bytes=slug_size(opts.out, external_thumbs=thumb_base is not None),
        slug_budget_mb=opts.slug_budget_mb,
        external_thumbs=thumb_base is not None,
        precision=extractor.identity.get("precision", "float32"),
        precision_reason=_precision_reason(opts.precision),
    )


def _precision_reason(asked: str) -> str:
    found = bf16_cpu_flags()
    if asked == "auto":
        return f"auto: CPU has {', '.join(found)}" if found else "auto: no AMX or AVX512-BF16"
    if asked == "float32" and found:
        return f"the CPU has {', '.join(found)}: --precision auto would use bfloat16"
    return ""


def similarity_baseline(normalised: np.ndarray) -> float:
    """Mean cosine similarity between two different products, without an N x N matrix.

    The sum of all pairwise cosines of unit rows is N^2 |mean|^2; removing the N self-pairs
    gives the mean over distinct pairs. The app shows matches relative to it.
    """
    n = len(normalised)
    if n < 2:
        return 0.0
    mean = normalised.astype(np.float64).mean(axis=0)
    self_pairs = float(np.einsum("ij,ij->", normalised, normalised))
    return round((n * n * float(mean @ mean) - self_pairs) / (n * (n - 1)), 6)


def export_pairwise(matrix: np.ndarray, ids: list[str], path: Path) -> Path:
    """Write the full cosine-similarity DataFrame (.csv, .pkl or .npy by extension)."""
    from .similarity import pairwise_similarity_frame

    frame = pairwise_similarity_frame(matrix, ids)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, float_format="%.6f")
    elif suffix in (".pkl", ".pickle"):
        frame.to_pickle(path)
    elif suffix == ".npy":
        np.save(path, frame.to_numpy(dtype=np.float32))
    else:
        raise CatalogError(f"--export-pairwise {path}: use a .csv, .pkl or .npy file name")
    return path
