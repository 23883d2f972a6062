"""Reader for contract 2, the precomputed folder (see docs/architecture.md).

Only the standard library is imported here: the static app (no numpy, no TensorFlow)
reads precomputed folders through this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
META_FILE = "meta.json"
PRODUCTS_FILE = "products.json"
NEIGHBOURS_FILE = "neighbours.json"
EMBEDDINGS_FILE = "embeddings.npy"
THUMBS_DIR = "thumbs"
REQUIRED_FILES = (META_FILE, PRODUCTS_FILE, NEIGHBOURS_FILE)


class PrecomputedError(Exception):
    """A precomputed folder is missing, incomplete or of another schema version."""


@dataclass
class Precomputed:
    """A loaded precomputed folder: metadata, products (sorted by id) and neighbours."""

    folder: Path
    meta: dict[str, Any]
    products: list[dict[str, Any]]
    neighbours: dict[str, list[list[Any]]]
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {p["id"]: i for i, p in enumerate(self.products)}

    def product(self, product_id: str) -> dict[str, Any] | None:
        """The product with this id, or None."""
        i = self.index.get(product_id)
        return None if i is None else self.products[i]

    @property
    def embeddings_path(self) -> Path:
        """Where the float16 L2-normalised embeddings live (read only by dynamic mode)."""
        return self.folder / EMBEDDINGS_FILE


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise PrecomputedError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except OSError as e:
        raise PrecomputedError(f"{path}: cannot read ({e.strerror})") from None


def read_meta(folder: str | Path) -> dict[str, Any]:
    """Read and check `meta.json` of a precomputed folder (schema version included)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PrecomputedError(f"{folder}: precomputed folder not found")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise PrecomputedError(
            f"{folder}: not a precomputed folder (missing {', '.join(missing)}); "
            "build one with `python -m pipeline build CATALOG --out FOLDER`"
        )
    meta = _read_json(folder / META_FILE)
    if not isinstance(meta, dict):
        raise PrecomputedError(f"{folder / META_FILE}: expected a JSON object")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise PrecomputedError(
            f"{folder / META_FILE}: schema_version {version!r}, this program reads "
            f"{SCHEMA_VERSION}; rebuild it with `python -m pipeline build`"
        )
    return meta


def read_precomputed(folder: str | Path) -> Precomputed:
    """Load a precomputed folder; raise PrecomputedError with a one-line reason if invalid."""
    folder = Path(folder)
    meta = read_meta(folder)
    products = _read_json(folder / PRODUCTS_FILE)
    neighbours = _read_json(folder / NEIGHBOURS_FILE)
    if not isinstance(products, list) or not all(
        isinstance(p, dict) and "id" in p for p in products
    ):
        raise PrecomputedError(f"{folder / PRODUCTS_FILE}: expected a list of products with ids")
    if not isinstance(neighbours, dict):
        raise PrecomputedError(f"{folder / NEIGHBOURS_FILE}: expected an object keyed by id")
    if meta.get("n_products") != len(products):
        raise PrecomputedError(
            f"{folder}: meta.json says {meta.get('n_products')} products, "
            f"products.json has {len(products)}"
        )
    return Precomputed(folder=folder, meta=meta, products=products, neighbours=neighbours)
