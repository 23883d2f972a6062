"""Reader for contract 2, the precomputed folder (see docs/architecture.md).

Only the standard library is imported here: the static app (no numpy, no TensorFlow)
reads precomputed folders through this module.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
META_FILE = "meta.json"
PRODUCTS_FILE = "products.json"
NEIGHBOURS_FILE = "neighbours.json"
EMBEDDINGS_FILE = "embeddings.npy"
COLOURS_FILE = "colours.npy"
COLOUR_MEAN_FILE = "colour_mean.npy"
THUMBS_DIR = "thumbs"
REQUIRED_FILES = (META_FILE, PRODUCTS_FILE, NEIGHBOURS_FILE)


class PrecomputedError(Exception):
    """A precomputed folder is missing, incomplete or of another schema version."""


@dataclass
class Precomputed:
    """A loaded precomputed folder: metadata, products (sorted by id) and neighbour rows.

    `neighbours` is the first row (`similar`); `rows` holds every row by key, in
    meta.json's order (a version-1 folder has the one `similar` row).
    """

    folder: Path
    meta: dict[str, Any]
    products: list[dict[str, Any]]
    neighbours: dict[str, list[list[Any]]]
    rows: dict[str, dict[str, list[list[Any]]]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {p["id"]: i for i, p in enumerate(self.products)}
        if not self.rows:
            self.rows = {"similar": self.neighbours}

    def product(self, product_id: str) -> dict[str, Any] | None:
        """The product with this id, or None."""
        i = self.index.get(product_id)
        return None if i is None else self.products[i]

    @property
    def embeddings_path(self) -> Path:
        """Where the float16 L2-normalised embeddings live (read only by dynamic mode)."""
        return self.folder / EMBEDDINGS_FILE


def read_json(path: Path) -> Any:
    """Parse one JSON file of the folder; any problem is a one-line PrecomputedError."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise PrecomputedError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise PrecomputedError(f"{path}: not UTF-8 (byte {e.start})") from None
    except ValueError as e:  # NaN / Infinity
        raise PrecomputedError(f"{path}: {e}") from None
    except OSError as e:
        raise PrecomputedError(f"{path}: cannot read ({e.strerror})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_OPTIONAL_TEXT = ("title", "currency", "product_url", "thumb", "sha256")


def validate_products(products: Any, path: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Check products.json: a list of objects with unique string ids and well-typed fields."""
    if not isinstance(products, list):
        raise PrecomputedError(f"{path}: expected a list of products")
    seen: set[str] = set()
    for n, p in enumerate(products):
        where = f"{path}: product {n}"
        if not isinstance(p, dict):
            raise PrecomputedError(f"{where}: expected an object")
        pid = p.get("id")
        if not isinstance(pid, str) or not pid:
            raise PrecomputedError(f"{where}: id must be a non-empty string, not {pid!r:.40}")
        where = f"{path}: product {pid!r:.60}"
        if pid in seen:
            raise PrecomputedError(f"{where}: duplicate id")
        seen.add(pid)
        for key in _OPTIONAL_TEXT:
            if p.get(key) is not None and not isinstance(p[key], str):
                raise PrecomputedError(f"{where}: {key} must be a string or null")
        price = p.get("price")
        if price is not None and not _finite(price):
            raise PrecomputedError(f"{where}: price must be a finite number or null")
        attrs = p.get("attrs")
        if attrs is not None and (
            not isinstance(attrs, dict)
            or not all(v is None or isinstance(v, str | int | float) for v in attrs.values())
        ):
            raise PrecomputedError(f"{where}: attrs must be an object of strings")
        xy = p.get("xy")
        if xy is not None and not (isinstance(xy, list) and len(xy) == 2
                                   and all(_finite(v) for v in xy)):
            raise PrecomputedError(f"{where}: xy must be two finite numbers or null")
    if meta.get("n_products") != len(products):
        raise PrecomputedError(
            f"{path.parent}: meta.json says {meta.get('n_products')} products, "
            f"products.json has {len(products)}"
        )
    return products


def validate_neighbours(
    neighbours: Any, path: Path, ids: set[str]
) -> dict[str, list[list[Any]]]:
    """Check neighbours.json: {product id: [[product id, finite score], ...]}."""
    if not isinstance(neighbours, dict):
        raise PrecomputedError(f"{path}: expected an object keyed by product id")
    for pid, pairs in neighbours.items():
        where = f"{path}: neighbours of {pid!r:.60}"
        if pid not in ids:
            raise PrecomputedError(f"{where}: not a product in products.json")
        if not isinstance(pairs, list):
            raise PrecomputedError(f"{where}: expected a list of [id, score] pairs")
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise PrecomputedError(f"{where}: expected [id, score] pairs")
            if not isinstance(pair[0], str) or pair[0] not in ids:
                raise PrecomputedError(f"{where}: {pair[0]!r:.60} is not a product id")
            if not _finite(pair[1]):
                raise PrecomputedError(f"{where}: score {pair[1]!r:.20} is not a finite number")
    return neighbours


def read_meta(folder: str | Path, required: tuple[str, ...] = REQUIRED_FILES) -> dict[str, Any]:
    """Read and check `meta.json` of a precomputed folder (schema version included);
    `required` are the files that must be there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PrecomputedError(f"{folder}: precomputed folder not found")
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise PrecomputedError(
            f"{folder}: not a precomputed folder (missing {', '.join(missing)}); "
            "build one with `python -m pipeline build CATALOG --out FOLDER`"
        )
    meta = read_json(folder / META_FILE)
    if not isinstance(meta, dict):
        raise PrecomputedError(f"{folder / META_FILE}: expected a JSON object")
    version = meta.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise PrecomputedError(
            f"{folder / META_FILE}: schema_version {version!r}, this program reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; rebuild it with "
            "`python -m pipeline build`"
        )
    if meta.get("metric", "cosine") not in ("cosine", "euclidean"):
        raise PrecomputedError(f"{folder / META_FILE}: metric {meta.get('metric')!r:.40} is "
                               "neither cosine nor euclidean")
    baseline = meta.get("similarity_baseline")
    if baseline is not None and not _finite(baseline):
        raise PrecomputedError(f"{folder / META_FILE}: similarity_baseline must be a number")
    if not isinstance(meta.get("model", {}), dict):
        raise PrecomputedError(f"{folder / META_FILE}: model must be an object")
    meta["rows"] = validate_rows(meta.get("rows"), folder / META_FILE)
    return meta


def score_percentile(score: float, quantiles: Sequence[float]) -> float | None:
    """Where `score` falls among a row's scores, 0-100, from its 101 `score_quantiles`
    (linear between quantiles; standard library only, as the app needs it). None when the
    row carries no calibration or the score is not a finite number."""
    if len(quantiles) < 2 or not _finite(score):
        return None
    i = bisect.bisect_right(quantiles, score)
    if i == 0:
        return 0.0
    if i >= len(quantiles):
        return 100.0
    lo, hi = quantiles[i - 1], quantiles[i]
    frac = 0.0 if hi <= lo else (score - lo) / (hi - lo)
    return round((i - 1 + frac) * 100 / (len(quantiles) - 1), 2)


def default_rows() -> list[dict[str, Any]]:
    """The `rows` of a folder with only neighbours.json (how a version-1 folder is read)."""
    return [{
        "key": "similar", "title": "Looks like this", "file": NEIGHBOURS_FILE,
        "weights": {"shape": 1.0, "colour": 0.0}, "max_colour": None, "score_quantiles": [],
    }]


def validate_rows(rows: Any, path: Path) -> list[dict[str, Any]]:
    """Check meta.json's `rows` (version 2); a folder without it has the one `similar` row
    of neighbours.json. Row files are plain names inside the folder."""
    if rows is None:
        return default_rows()
    if not isinstance(rows, list) or not rows:
        raise PrecomputedError(f"{path}: rows must be a non-empty list")
    seen: set[str] = set()
    for n, row in enumerate(rows):
        where = f"{path}: rows[{n}]"
        if not isinstance(row, dict):
            raise PrecomputedError(f"{where}: expected an object")
        key, file = row.get("key"), row.get("file")
        if not isinstance(key, str) or not key or key in seen:
            raise PrecomputedError(f"{where}: key must be a unique non-empty string")
        seen.add(key)
        if (not isinstance(file, str) or not file.endswith(".json") or "/" in file
                or "\\" in file or file.startswith(".")):
            raise PrecomputedError(f"{where}: file must be a .json file name in the folder")
        if not isinstance(row.get("title", ""), str):
            raise PrecomputedError(f"{where}: title must be a string")
        quantiles = row.get("score_quantiles", [])
        if not isinstance(quantiles, list) or not all(_finite(q) for q in quantiles) or any(
            b < a for a, b in itertools.pairwise(quantiles)
        ):
            raise PrecomputedError(f"{where}: score_quantiles must be ascending numbers")
        row.setdefault("title", key)
        row.setdefault("score_quantiles", [])
    if rows[0]["file"] != NEIGHBOURS_FILE:
        raise PrecomputedError(f"{path}: the first row must be the one in {NEIGHBOURS_FILE}")
    return rows


def read_precomputed(folder: str | Path) -> Precomputed:
    """Load a precomputed folder; raise PrecomputedError with a one-line reason if invalid."""
    folder = Path(folder)
    meta = read_meta(folder)
    products = validate_products(read_json(folder / PRODUCTS_FILE), folder / PRODUCTS_FILE,
                                 meta)
    ids = {p["id"] for p in products}
    rows = {}
    for row in meta["rows"]:
        path = folder / row["file"]
        if not path.is_file():
            raise PrecomputedError(f"{path}: missing (row {row['key']!r} of meta.json)")
        rows[row["key"]] = validate_neighbours(read_json(path), path, ids)
    neighbours = rows[meta["rows"][0]["key"]]
    return Precomputed(folder=folder, meta=meta, products=products, neighbours=neighbours,
                       rows=rows)
