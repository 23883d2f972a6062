"""Generate schema-valid contract-2 precomputed folders for app tests and benchmarks.

The folder is written by the pipeline's own writer (`pipeline.writer.write_precomputed`,
with meta.json from `precomputed_meta`), so it is what `python -m pipeline build` writes
(docs/architecture.md, contract 2); only the content is made up: the neighbours come from
a seeded random generator, not a model. Products of the same `articleType` are each
other's neighbours, so pages look plausible.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.colour import COLOUR_DIM, COLOUR_VERSION
from pipeline.precomputed import COLOUR_MEAN_FILE, COLOURS_FILE
from pipeline.rows import OTHER_COLOURS, SIMILAR, RowRule, plan_rows, score_quantiles
from pipeline.writer import precomputed_meta, write_precomputed

DEFAULT_ATTRS: dict[str, list[str]] = {
    "gender": ["Men", "Women", "Unisex"],
    "articleType": ["Tshirts", "Shirts", "Jeans", "Sneakers", "Watches", "Handbags", "Dresses"],
    "baseColour": ["Black", "White", "Blue", "Red", "Green", "Grey", "Brown", "Pink"],
}

_COLOURS = {
    "Black": (30, 30, 30),
    "White": (235, 235, 235),
    "Blue": (40, 80, 200),
    "Red": (200, 40, 40),
    "Green": (40, 160, 70),
    "Grey": (128, 128, 128),
    "Brown": (120, 80, 40),
    "Pink": (240, 150, 180),
}
_ADJECTIVES = ["Classic", "Slim", "Relaxed", "Everyday", "Premium", "Vintage", "Sport", "Urban"]
FAKE_DIM = 16  # length of the fake embeddings
# One product gets a title full of markup: the app must show it as text.
HTML_TITLE = '<b>Bold</b> Tee & <script>alert("x")</script>'


def _jpeg(rgb: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> bytes:
    """A tiny real JPEG: a coloured rectangle with a lighter band, made with Pillow."""
    from PIL import Image, ImageDraw  # dev/test dependency only

    img = Image.new("RGB", size, rgb)
    draw = ImageDraw.Draw(img)
    light = tuple(min(255, c + 60) for c in rgb)
    draw.rectangle([size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4], fill=light)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def make_fake_precomputed(
    folder: str | Path,
    n_products: int,
    k: int = 10,
    seed: int = 0,
    attrs: dict[str, list[str]] | None = None,
    metric: str = "cosine",
    embeddings: bool = False,
    thumbs: bool = True,
) -> Path:
    """Write a contract-2 folder with `n_products` products and `k` neighbours each.

    `attrs` maps attribute name to its possible values (default: gender, articleType,
    baseColour). `metric` is "cosine" (scores = similarities, descending) or "euclidean"
    (scores = distances, ascending). Product 0 has a title containing HTML markup;
    every 7th product has no price and every 5th no product_url. Returns the folder.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', not {metric!r}")
    if n_products < 2 or k < 1:
        raise ValueError("need n_products >= 2 and k >= 1")
    attrs = DEFAULT_ATTRS if attrs is None else attrs
    rng = random.Random(seed)
    folder = Path(folder)
    k = min(k, n_products - 1)

    names = list(attrs)
    group_key = "articleType" if "articleType" in attrs else (names[0] if names else None)
    jpegs: dict[str, bytes] = {}
    thumb_of: dict[str, bytes] = {}
    products: list[dict[str, Any]] = []
    groups: dict[str, list[int]] = {}
    centres: dict[str, tuple[float, float]] = {}
    width = len(str(n_products))
    for i in range(n_products):
        pid = f"p{i:0{width}d}"
        values = {name: rng.choice(vals) for name, vals in attrs.items()}
        colour = values.get("baseColour", rng.choice(list(_COLOURS)))
        if colour not in jpegs:
            jpegs[colour] = _jpeg(_COLOURS.get(colour, (100, 100, 160)))
        thumb_of[pid] = jpegs[colour]
        article = values.get(group_key, "Item") if group_key else "Item"
        title = f"{rng.choice(_ADJECTIVES)} {colour} {article} {i}"
        if i == 0:
            title = HTML_TITLE
        group = values.get(group_key, "all") if group_key else "all"
        groups.setdefault(group, []).append(i)
        cx, cy = centres.setdefault(group, (rng.uniform(-10, 10), rng.uniform(-10, 10)))
        products.append(
            {
                "id": pid,
                "title": title,
                "price": None if i % 7 == 3 else round(rng.uniform(5, 250), 2),
                "currency": "EUR",
                "product_url": None if i % 5 == 4 else f"https://shop.example/p/{pid}",
                "thumb": f"thumbs/{pid}.jpg",
                "sha256": hashlib.sha256(jpegs[colour] + pid.encode()).hexdigest(),
                "attrs": values,
                "xy": [round(cx + rng.gauss(0, 1.5), 4), round(cy + rng.gauss(0, 1.5), 4)],
            }
        )

    def row(other_colour: bool) -> dict[str, list[list[Any]]]:
        found: dict[str, list[list[Any]]] = {}
        for i, product in enumerate(products):
            same = groups[product["attrs"].get(group_key, "all") if group_key else "all"]
            if other_colour:
                colour = product["attrs"].get("baseColour")
                same = [j for j in same if products[j]["attrs"].get("baseColour") != colour]
            pool = [j for j in rng.sample(same, min(len(same), k + 1)) if j != i][:k]
            while len(pool) < k:  # small groups: top up from the whole catalog
                j = rng.randrange(n_products)
                if j != i and j not in pool:
                    pool.append(j)
            if metric == "cosine":
                scores = sorted((rng.uniform(0.35, 0.97) for _ in pool), reverse=True)
            else:
                scores = sorted(rng.uniform(8.0, 40.0) for _ in pool)
            found[product["id"]] = [
                [products[j]["id"], round(s, 6)] for j, s in zip(pool, scores, strict=True)
            ]
        return found

    neighbours = row(False)
    rules = [RowRule(SIMILAR, "Looks like this", 1.0, 0.0)]
    others: dict[str, dict[str, list[list[Any]]]] = {}
    if metric == "cosine":
        unit = np.eye(2, dtype=np.float32)
        rules = plan_rows((SIMILAR, OTHER_COLOURS), unit, unit)
        others[rules[1].file] = row(True)
    rows_meta = []
    for rule in rules:
        found = neighbours if rule.key == SIMILAR else others[rule.file]
        scores = np.array([s for pairs in found.values() for _, s in pairs])
        rows_meta.append({**rule.meta(), "score_quantiles": score_quantiles(scores)})

    meta = precomputed_meta(
        n_products=n_products,
        k=k,
        metric=metric,
        group_by=None,
        model={
            "name": "mobilenet-v1-fake",
            "layer": "dw13-gap",
            "weights": "fake (tests/fake_precomputed.py)",
            "weights_sha256": "0" * 64,
            "input_size": [224, 224],
            "dim": FAKE_DIM,
            "resize": "pad",
        },
        similarity_baseline=0.0,  # the made-up cosine scores are already spread out
        source={"catalog": "tests/fake_precomputed.py", "n_rows": n_products, "n_skipped": 0},
        created_at="2025-01-02T03:04:05+00:00",
        rows=rows_meta,
        colour={"version": COLOUR_VERSION, "file": COLOURS_FILE, "mean_file": COLOUR_MEAN_FILE}
        if metric == "cosine" else None,
    )
    vectors = colours = None
    if embeddings:
        gen = np.random.default_rng(seed)
        vectors = gen.standard_normal((n_products, FAKE_DIM))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        colours = np.abs(gen.standard_normal((n_products, COLOUR_DIM)))
        colours /= np.linalg.norm(colours, axis=1, keepdims=True)
    return write_precomputed(
        folder, meta, products, neighbours, vectors,
        (lambda p: thumb_of[p["id"]]) if thumbs else None, [], other_rows=others,
        colours=colours if metric == "cosine" else None,
        colour_mean=np.zeros(COLOUR_DIM) if metric == "cosine" and embeddings else None,
    )
