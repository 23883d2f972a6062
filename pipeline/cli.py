"""Command line: `python -m pipeline build|evaluate ...`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .ann import SUGGEST_FROM
from .catalog import CatalogError
from .evaluate import EvaluationError, add_evaluate_arguments, run_evaluate
from .precomputed import PrecomputedError
from .rows import (
    DEFAULT_COLOUR_WEIGHT,
    DEFAULT_COLOUR_WEIGHT_UNWHITENED,
    DEFAULT_OTHER_COLOUR_QUANTILE,
    DEFAULT_OTHER_COLOUR_QUANTILE_TEXT,
    DEFAULT_OTHER_TEXT_WEIGHT,
    DEFAULT_PREFER_MARGIN,
    DEFAULT_TEXT_WEIGHT,
    ROW_KEYS,
)
from .text import TEXT_DIMS
from .whitening import WHITEN_DIMS, WHITEN_MIN_PRODUCTS

SHOW_SKIPPED = 10


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="catalog folder -> precomputed folder")
    b.add_argument("catalog", type=Path, help="catalog folder, or a folder of images")
    b.add_argument("--out", type=Path, required=True, help="precomputed folder to write")
    b.add_argument("--model", default="vgg16",
                   help="vgg16 (fc2, default), resnet50 (avg-pooled), or a .keras file path")
    b.add_argument("--weights", default="imagenet",
                   help="for vgg16/resnet50: imagenet (Keras cache), random, or a weights file")
    b.add_argument("--metadata", type=Path, help="metadata CSV for a folder of images")
    b.add_argument("--id-column", default="id", help="id column of the CSV (default: id)")
    b.add_argument("--image-column", help="image path column (default: match files by id)")
    b.add_argument("--title-column", help="title column (default: title)")
    b.add_argument("--k", type=int, default=10, help="neighbours per product (default 10)")
    b.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    b.add_argument("--group-by", help="only recommend products with the same value of COLUMN")
    b.add_argument("--rows",
                   help="recommendation rows to write, comma-separated, similar first "
                   f"(default {','.join(ROW_KEYS)})")
    b.add_argument("--colour-weight", type=float,
                   help="weight of colour against shape in the similar row, 0 to below 1 "
                   f"(default {DEFAULT_COLOUR_WEIGHT} with whitening, "
                   f"{DEFAULT_COLOUR_WEIGHT_UNWHITENED} without, measured; 0: shape only)")
    b.add_argument("--other-colour-quantile", type=float,
                   help="other_colours row: colour similarity at most this quantile of "
                   f"random pairs (default {DEFAULT_OTHER_COLOUR_QUANTILE_TEXT} with words, "
                   f"{DEFAULT_OTHER_COLOUR_QUANTILE} without)")
    b.add_argument("--text-weight", type=float, default=DEFAULT_TEXT_WEIGHT,
                   help="weight of the product's words (title, attributes) in the similar "
                   f"row, 0 to below 1 (default {DEFAULT_TEXT_WEIGHT}, measured; 0: visual)")
    b.add_argument("--other-text-weight", type=float, default=DEFAULT_OTHER_TEXT_WEIGHT,
                   help="weight of the words (colour words left out) in the other_colours "
                   f"row (default {DEFAULT_OTHER_TEXT_WEIGHT})")
    b.add_argument("--text-dims", type=int, default=TEXT_DIMS,
                   help=f"dimensions of the words signal (default {TEXT_DIMS})")
    b.add_argument("--department", default="auto", metavar="auto|none|COLUMN",
                   help="keep recommendations in the product's department (men, women, "
                   "kids...): auto = a column whose values name departments, else the "
                   "titles (default; off with --prefer or --group-by); none; or a column")
    b.add_argument("--whiten", action=argparse.BooleanOptionalAction, default=True,
                   help="PCA-whiten the features (default on; catalogs under "
                   f"{WHITEN_MIN_PRODUCTS} products are never whitened)")
    b.add_argument("--whiten-dims", type=int, default=WHITEN_DIMS,
                   help=f"dimensions kept by whitening (default {WHITEN_DIMS})")
    b.add_argument("--prefer", metavar="COLUMN",
                   help="rank neighbours with the product's own value of COLUMN first when "
                   "their score is within --prefer-margin (soft --group-by)")
    b.add_argument("--prefer-margin", type=float, default=DEFAULT_PREFER_MARGIN,
                   help=f"score margin of --prefer (default {DEFAULT_PREFER_MARGIN})")
    b.add_argument("--batch", type=int, default=32, help="images per model call (default 32)")
    b.add_argument("--resize", choices=("pad", "stretch", "crop"), default="pad",
                   help="how photos fit the model's square input (default pad: keep whole photo)")
    b.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="float32",
                   help="model compute type: auto = bfloat16 where the CPU has AMX or "
                   "AVX512-BF16, else float32 (default float32)")
    b.add_argument("--cache-dir", type=Path, help="feature cache (default ~/.cache/lookalike)")
    b.add_argument("--block", type=int, default=1024, help="query rows per similarity block")
    b.add_argument("--index", choices=("exact", "faiss"), default="exact",
                   help="exact top-k (default), or candidates from a faiss IVF index for "
                   "catalogs of millions (approximate; needs the index extra)")
    b.add_argument("--nprobe", type=int, default=32,
                   help="--index faiss: inverted lists searched per product (default 32)")
    b.add_argument("--engine", choices=("local", "dask"), default="local")
    b.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786); "
                   "default: a LocalCluster on this machine")
    b.add_argument("--workers", type=int, help="LocalCluster worker processes (default 2)")
    b.add_argument("--export-pairwise", type=Path,
                   help="also write the full cosine DataFrame (.csv/.pkl/.npy; small catalogs)")
    b.add_argument("--thumb-base-url", metavar="URL",
                   help="thumbnails hosted at URL (upload OUT/thumbs/ there): products.json "
                   "points at URL/<id>.jpg, and thumbs/ stays out of the slug")
    b.add_argument("--slug-budget-mb", type=float, default=300.0,
                   help="warn when the folder's share of a Heroku slug exceeds this (MB, "
                   "default 300)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")

    e = sub.add_parser("evaluate", help="how good the rows are: precision@k per label, ...")
    add_evaluate_arguments(e)
    return p


def _build(args: argparse.Namespace) -> int:
    from .build import BuildOptions, build

    if args.batch < 1:
        raise CatalogError(f"--batch {args.batch}: must be at least 1")
    opts = BuildOptions(
        catalog=args.catalog, out=args.out, model=args.model, weights=args.weights,
        metadata=args.metadata, id_column=args.id_column, image_column=args.image_column,
        title_column=args.title_column, k=args.k, metric=args.metric, group_by=args.group_by,
        batch=args.batch, resize=args.resize, precision=args.precision,
        cache_dir=args.cache_dir, block=args.block, index=args.index, nprobe=args.nprobe,
        engine=args.engine, scheduler=args.scheduler, workers=args.workers,
        export_pairwise=args.export_pairwise, progress=not args.no_progress,
        thumb_base_url=args.thumb_base_url, slug_budget_mb=args.slug_budget_mb,
        rows=tuple(r.strip() for r in args.rows.split(",") if r.strip()) if args.rows else None,
        colour_weight=args.colour_weight, other_colour_quantile=args.other_colour_quantile,
        whiten=args.whiten, whiten_dims=args.whiten_dims, prefer=args.prefer,
        prefer_margin=args.prefer_margin, text_weight=args.text_weight,
        other_text_weight=args.other_text_weight, text_dims=args.text_dims,
        department=args.department,
    )
    summary = build(opts)
    for s in summary.skipped[:SHOW_SKIPPED]:
        print(f"skipped {s['id']}: {s['image']}: {s['error']}", file=sys.stderr)
    if len(summary.skipped) > SHOW_SKIPPED:
        print(f"... {len(summary.skipped) - SHOW_SKIPPED} more", file=sys.stderr)
    if summary.skipped:
        print(f"skipped images are listed in {summary.out / 'report.json'}", file=sys.stderr)
    print(summary.precision_line())
    if args.index == "exact" and summary.n_products >= SUGGEST_FROM:
        print(f"hint: {summary.n_products:,} products; --index faiss finds neighbours much "
              "faster at this size (approximate; see README 'Catalogs of millions')",
              file=sys.stderr)
    print(summary.slug_line())
    warning = summary.slug_warning()
    if warning:
        print(warning, file=sys.stderr)
    print(summary.line())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors end in one line on stderr and exit code 1."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    from .build import BuildError
    from .dask_engine import SchedulerError
    from .models import ModelError

    user_errors = (
        CatalogError, BuildError, PrecomputedError, EvaluationError, ModelError, SchedulerError
    )
    try:
        return _build(args) if args.command == "build" else run_evaluate(args)
    except user_errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MemoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the cache", file=sys.stderr)
        return 130
