"""Small catalogs made by the tests, a fast stand-in extractor, and where ../shared lives."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.models import FeatureExtractor

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_MODEL = SHARED / "models" / "mobilenet-v1-imagenet-dw13-gap.keras"
FASHION = SHARED / "data" / "fashion-small-2k"

needs_shared = pytest.mark.skipif(
    not (SHARED_MODEL.is_file() and (FASHION / "styles.csv").is_file()),
    reason=f"needs ../shared (the offline MobileNet model and fashion-small-2k) at {SHARED}",
)

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 40),
}
SHAPES = ("square", "disc", "bar")


def exact_scores(x: np.ndarray, metric: str) -> np.ndarray:
    """Every pair's 'higher is closer' score in float64: cosine, or minus squared distance."""
    from pipeline.similarity import l2_normalise

    if metric == "cosine":
        xn = l2_normalise(x).astype(np.float64)
        return xn @ xn.T
    xd = x.astype(np.float64)
    return -((xd[:, None, :] - xd[None, :, :]) ** 2).sum(-1)


def draw_product(colour: str, shape: str, variant: int = 0, size=(64, 80)) -> Image.Image:
    """A toy product photo: a coloured shape on white, slightly shifted per variant."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    w, h = size
    o = variant * 2
    box = (w // 5 + o, h // 5 + o, w - w // 5 + o, h - h // 5 + o)
    rgb = COLOURS[colour]
    if shape == "square":
        d.rectangle(box, fill=rgb)
    elif shape == "disc":
        d.ellipse(box, fill=rgb)
    else:
        d.rectangle((box[0], h // 2 - 6 + o, box[2], h // 2 + 6 + o), fill=rgb)
    return img


def make_catalog(folder: Path, n_variants: int = 2, extra_rows: list[dict] | None = None) -> Path:
    """A contract-1 catalog: every colour x shape x variant, with title/price/attributes."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for colour in COLOURS:
        for shape in SHAPES:
            for v in range(n_variants):
                pid = f"{colour}-{shape}-{v}"
                draw_product(colour, shape, v).save(images / f"{pid}.jpg", quality=95)
                rows.append(
                    {
                        "id": pid,
                        "image": f"images/{pid}.jpg",
                        "title": f"{colour.title()} {shape} <b>#{v}</b>",
                        "price": f"{10 + v}.50",
                        "currency": "EUR",
                        "product_url": f"http://shop.invalid/p/{pid}",
                        "colour": colour,
                        "shape": shape,
                    }
                )
    rows += extra_rows or []
    write_catalog_csv(folder, rows)
    return folder


def write_catalog_csv(folder: Path, rows: list[dict]) -> None:
    """Write catalog.csv with the union of the rows' columns."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with (folder / "catalog.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


class ColourModel:
    """A stand-in Keras model: mean colour of a 4x4 grid (48-d). Fast and semantic enough."""

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        n, h, w, _ = x.shape
        grid = x.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4))
        return (255.0 - grid).reshape(n, -1)  # distance from white: background is zero


def colour_extractor() -> FeatureExtractor:
    """A FeatureExtractor around ColourModel, with a stable identity."""
    identity = {
        "name": "test-colour-grid",
        "layer": "grid4",
        "weights": "none",
        "weights_sha256": "0" * 64,
        "input_size": [32, 32],
        "dim": 48,
    }
    return FeatureExtractor(identity=identity, model=ColourModel())


def build_fashion_subset(
    root: Path, n_catalog: int, n_held_out: int, min_type_size: int
) -> tuple[Path, list[dict]]:
    """Build the first `n_catalog` fashion photos (by id) with the shared model, k=5.

    Returns the precomputed folder and up to `n_held_out` later rows whose articleType has
    at least `min_type_size` products in the catalog (fair queries for precision@5).
    """
    import shutil
    from collections import Counter

    from pipeline.build import BuildOptions, build

    with (FASHION / "styles.csv").open(encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["id"])
    catalog_rows = rows[:n_catalog]
    sizes = Counter(r["articleType"] for r in catalog_rows)
    held_out = [r for r in rows[n_catalog:] if sizes[r["articleType"]] >= min_type_size]
    images = root / "images"
    images.mkdir(parents=True)
    for r in catalog_rows:
        shutil.copy(FASHION / "images" / f"{r['id']}.jpg", images / f"{r['id']}.jpg")
    with (root / "styles.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(catalog_rows[0]))
        writer.writeheader()
        writer.writerows(catalog_rows)
    out = root / "pre"
    build(BuildOptions(
        catalog=images, metadata=root / "styles.csv", title_column="productDisplayName",
        model=str(SHARED_MODEL), out=out, cache_dir=root / "cache", k=5, progress=False,
    ))
    return out, held_out[:n_held_out]
