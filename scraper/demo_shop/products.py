"""The demo shop's product list: deterministic, about 150 products in 9 categories."""

from __future__ import annotations

import random
from dataclasses import dataclass

# (category, sku code, noun, variants, price range in EUR)
CATEGORIES = (
    ("tops", "TOP", "T-shirt", ("short", "long"), (9, 39)),
    ("trousers", "TRS", "Trousers", ("slim", "wide"), (29, 89)),
    ("dresses", "DRS", "Dress", ("midi", "maxi"), (35, 129)),
    ("sneakers", "SNK", "Sneakers", ("low", "high"), (45, 159)),
    ("boots", "BOT", "Boots", ("ankle", "tall"), (69, 249)),
    ("bags", "BAG", "Handbag", ("handbag", "tote"), (25, 199)),
    ("hats", "HAT", "Hat", ("fedora", "bucket"), (15, 59)),
    ("watches", "WCH", "Watch", ("round", "square"), (49, 399)),
    ("sunglasses", "SUN", "Sunglasses", ("round", "wayfarer"), (19, 149)),
)
PER_CATEGORY = 17

COLOURS = (
    ("Crimson", (200, 30, 45)), ("Navy", (25, 40, 100)), ("Forest", (30, 105, 55)),
    ("Mustard", (215, 170, 40)), ("Black", (28, 28, 30)), ("Charcoal", (75, 78, 84)),
    ("Sky", (95, 165, 230)), ("Coral", (245, 120, 95)), ("Olive", (120, 125, 50)),
    ("Plum", (110, 45, 110)), ("Teal", (20, 130, 135)), ("Sand", (210, 185, 140)),
    ("Burgundy", (115, 20, 40)), ("Mint", (140, 215, 180)), ("Orange", (240, 130, 30)),
    ("Lilac", (180, 150, 215)), ("Chocolate", (95, 60, 35)), ("Denim", (70, 100, 150)),
)
PATTERNS = ("plain", "plain", "plain", "striped", "dotted", "checked", "two-tone")
# Two products are "members only": their pages live under the path robots.txt disallows.
MEMBERS_ONLY = {"LK-DRS-007", "LK-WCH-011"}
# A re-issue sold under a new sku with the very same photo (dedupe by sha256).
REISSUE = ("LK-TOP-018", "LK-TOP-001")


@dataclass(frozen=True)
class DemoProduct:
    """One product of the demo shop, with the pose its photo is drawn in."""

    sku: str
    slug: str
    title: str
    category: str
    variant: str
    colour: str
    rgb: tuple[int, int, int]
    accent: tuple[int, int, int]
    pattern: str
    price: str
    seed: str
    image_sku: str  # whose photo this product shows (itself, except the re-issue)

    @property
    def members_only(self) -> bool:
        """Whether the product page is under the robots-disallowed path."""
        return self.sku in MEMBERS_ONLY

    @property
    def page_path(self) -> str:
        """Path of the product page."""
        return f"/{'members' if self.members_only else 'product'}/{self.slug}.html"


def _accent(rng: random.Random, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    _name, other = rng.choice(COLOURS)
    if sum(abs(a - b) for a, b in zip(other, rgb, strict=True)) < 120:
        return (250, 250, 250) if sum(rgb) < 380 else (30, 30, 30)
    return other


def demo_products() -> list[DemoProduct]:
    """All products, sorted by sku; the same list on every call and every machine."""
    products = []
    for category, code, noun, variants, (low, high) in CATEGORIES:
        for n in range(1, PER_CATEGORY + 1):
            sku = f"LK-{code}-{n:03d}"
            rng = random.Random(f"lookalike-demo/{sku}")
            colour, rgb = rng.choice(COLOURS)
            pattern = rng.choice(PATTERNS)
            variant = variants[rng.randrange(len(variants))]
            accent = _accent(rng, rgb)
            cents = rng.randrange(low * 100, high * 100, 50) + 45
            adjective = "" if pattern == "plain" else pattern.capitalize() + " "
            kind = noun if variant.lower() == noun.lower() else f"{variant.capitalize()} {noun}"
            title = f"{colour} {adjective}{kind}"
            slug = f"{colour}-{pattern}-{variant}-{noun}-{n}".lower().replace(" ", "-")
            products.append(DemoProduct(sku, slug, title, category, variant, colour, rgb,
                                        accent, pattern, f"{cents // 100}.{cents % 100:02d}",
                                        sku, sku))
    # The re-issue: a new sku and page, the original's photo.
    original = next(p for p in products if p.sku == REISSUE[1])
    products.append(DemoProduct(REISSUE[0], f"{original.slug}-reissue",
                                f"{original.title} (re-issue)", original.category,
                                original.variant, original.colour, original.rgb, original.accent,
                                original.pattern, original.price, original.seed, original.sku))
    return sorted(products, key=lambda p: p.sku)
