"""Procedural product photos: a category silhouette, filled with the product's colour and
pattern, in a per-product pose (size, rotation, offset, mirror) on a white background.

Shapes are drawn at twice the output size and downsampled, for smooth edges. Everything
is derived from the product's seed, so the same product gives the same pixels.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from scraper.demo_shop.products import DemoProduct

RGB = tuple[int, int, int]
SS = 2  # supersampling factor


def _shade(rgb: RGB, f: float) -> RGB:
    if f < 1:
        return tuple(int(c * f) for c in rgb)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (f - 1)) for c in rgb)  # type: ignore[return-value]


def _pattern_fill(size: int, p: DemoProduct, rng: random.Random) -> Image.Image:
    """A texture the size of the canvas in the product's colours and pattern."""
    img = Image.new("RGB", (size, size), p.rgb)
    d = ImageDraw.Draw(img)
    step = int(size * rng.uniform(0.045, 0.075))
    if p.pattern == "striped":
        width = max(2, step // 3)
        if rng.random() < 0.5:
            for y in range(0, size, step):
                d.rectangle([0, y, size, y + width], fill=p.accent)
        else:
            for x in range(-size, size, step):
                d.line([(x, 0), (x + size, size)], fill=p.accent, width=width)
    elif p.pattern == "dotted":
        r = max(2, step // 5)
        for row, y in enumerate(range(0, size, step)):
            for x in range(0, size, step):
                cx = x + (step // 2 if row % 2 else 0)
                d.ellipse([cx - r, y - r, cx + r, y + r], fill=p.accent)
    elif p.pattern == "checked":
        light = _shade(p.rgb, 1.45)
        band = step // 2
        overlay = Image.new("RGB", (size, size), p.rgb)
        od = ImageDraw.Draw(overlay)
        for v in range(0, size, step):
            od.rectangle([v, 0, v + band, size], fill=light)
            od.rectangle([0, v, size, v + band], fill=light)
        img = Image.blend(img, overlay, 0.55)
    elif p.pattern == "two-tone":
        d.rectangle([0, int(size * rng.uniform(0.5, 0.62)), size, size], fill=p.accent)
    return img


# --- silhouettes: each draws into a mask (255 = object) and returns a details painter ----

Painter = Callable[[ImageDraw.ImageDraw], None]


def _pt(s: int, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(x * s, y * s) for x, y in pts]


def _top(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    long = p.variant == "long"
    hem = rng.uniform(0.82, 0.88)
    sleeve = [(0.28, 0.19), (0.06, 0.74), (0.17, 0.77), (0.31, 0.42)] if long else \
        [(0.28, 0.19), (0.10, 0.37), (0.21, 0.47), (0.31, 0.39)]
    left = [(0.41, 0.16), *sleeve, (0.31, hem)]
    right = [(1 - x, y) for x, y in reversed(left)]
    m.polygon(_pt(s, left + right), fill=255)
    m.ellipse(_pt(s, [(0.40, 0.08), (0.60, 0.25)]), fill=0)
    dark = _shade(p.rgb, 0.6)

    def details(d: ImageDraw.ImageDraw) -> None:
        d.arc(_pt(s, [(0.395, 0.075), (0.605, 0.255)]), 0, 180, fill=dark, width=s // 60)
        if not long:
            d.line(_pt(s, [(0.12, 0.38), (0.22, 0.46)]), fill=dark, width=s // 120)
            d.line(_pt(s, [(0.88, 0.38), (0.78, 0.46)]), fill=dark, width=s // 120)
    return details


def _trousers(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    flare = 0.06 if p.variant == "wide" else -0.02
    length = rng.uniform(0.86, 0.92)
    m.polygon(_pt(s, [(0.31, 0.13), (0.69, 0.13), (0.72 + flare, length), (0.535, length),
                      (0.50, 0.40), (0.465, length), (0.28 - flare, length)]), fill=255)
    dark = _shade(p.rgb, 0.55)

    def details(d: ImageDraw.ImageDraw) -> None:
        d.rectangle(_pt(s, [(0.31, 0.13), (0.69, 0.19)]), fill=_shade(p.rgb, 0.75))
        d.line(_pt(s, [(0.50, 0.19), (0.50, 0.33)]), fill=dark, width=s // 150)
        d.arc(_pt(s, [(0.29, 0.12), (0.43, 0.30)]), 0, 90, fill=dark, width=s // 150)
        d.arc(_pt(s, [(0.57, 0.12), (0.71, 0.30)]), 90, 180, fill=dark, width=s // 150)
        for x in (0.36, 0.50, 0.64):
            d.rectangle(_pt(s, [(x - 0.008, 0.125), (x + 0.008, 0.195)]), fill=dark)
    return details


def _dress(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    hem = 0.92 if p.variant == "maxi" else rng.uniform(0.74, 0.80)
    flare = rng.uniform(0.20, 0.30)
    m.polygon(_pt(s, [(0.38, 0.20), (0.62, 0.20), (0.59, 0.44), (0.5 + flare, hem),
                      (0.5 - flare, hem), (0.41, 0.44)]), fill=255)
    m.ellipse(_pt(s, [(0.5 - flare, hem - 0.04), (0.5 + flare, hem + 0.03)]), fill=255)
    m.ellipse(_pt(s, [(0.43, 0.16), (0.57, 0.27)]), fill=0)
    for x in (0.39, 0.585):
        m.rectangle(_pt(s, [(x, 0.08), (x + 0.025, 0.22)]), fill=255)
    dark = _shade(p.rgb, 0.6)

    def details(d: ImageDraw.ImageDraw) -> None:
        d.line(_pt(s, [(0.41, 0.44), (0.59, 0.44)]), fill=dark, width=s // 80)
        for k in range(3):
            x = 0.44 + 0.06 * k
            d.line(_pt(s, [(x, 0.46), (0.5 + (x - 0.5) * 3.2, hem - 0.02)]), fill=dark,
                   width=s // 300)
    return details


def _sneaker(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    high = p.variant == "high"
    top = 0.22 if high else 0.38
    upper = [(0.14, 0.66), (0.13, top + 0.04), (0.20, top), (0.34, top + 0.02),
             (0.44, 0.40), (0.56, 0.36), (0.72, 0.48), (0.86, 0.56), (0.89, 0.66)]
    m.polygon(_pt(s, upper), fill=255)
    dark = _shade(p.rgb, 0.55)

    def details(d: ImageDraw.ImageDraw) -> None:
        d.rounded_rectangle(_pt(s, [(0.11, 0.64), (0.91, 0.74)]), radius=s // 25,
                            fill=(238, 238, 236), outline=(150, 150, 150), width=s // 200)
        d.line(_pt(s, [(0.13, 0.69), (0.89, 0.69)]), fill=(180, 180, 180), width=s // 250)
        for k in range(5):
            x = 0.45 + 0.045 * k
            d.line(_pt(s, [(x, 0.41 + 0.03 * k), (x + 0.05, 0.45 + 0.03 * k)]),
                   fill=(245, 245, 245), width=s // 90)
        d.arc(_pt(s, [(0.22, 0.40), (0.80, 0.78)]), 200, 320, fill=p.accent, width=s // 40)
        d.ellipse(_pt(s, [(0.18, top + 0.03), (0.26, top + 0.09)]), fill=dark)
    return details


def _boot(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    top = 0.10 if p.variant == "tall" else 0.36
    m.polygon(_pt(s, [(0.24, top), (0.50, top), (0.52, 0.55), (0.78, 0.62), (0.86, 0.70),
                      (0.86, 0.76), (0.22, 0.76), (0.22, 0.50)]), fill=255)
    dark = _shade(p.rgb, 0.45)

    def details(d: ImageDraw.ImageDraw) -> None:
        d.rectangle(_pt(s, [(0.21, 0.75), (0.88, 0.79)]), fill=(40, 35, 30))
        d.polygon(_pt(s, [(0.21, 0.78), (0.34, 0.78), (0.33, 0.87), (0.22, 0.87)]),
                  fill=(40, 35, 30))
        d.line(_pt(s, [(0.24, top + 0.02), (0.50, top + 0.02)]), fill=dark, width=s // 70)
        d.line(_pt(s, [(0.50, top + 0.05), (0.51, 0.52)]), fill=dark, width=s // 200)
    return details


def _bag(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    tote = p.variant == "tote"
    body = [(0.20, 0.42), (0.80, 0.42), (0.80, 0.84), (0.20, 0.84)] if tote else \
        [(0.26, 0.44), (0.74, 0.44), (0.84, 0.84), (0.16, 0.84)]
    m.polygon(_pt(s, body), fill=255)
    m.rounded_rectangle(_pt(s, [(body[3][0], 0.70), (body[2][0], 0.86)]), radius=s // 18,
                        fill=255)
    handle = [(0.32, 0.14), (0.68, 0.66)] if not tote else [(0.28, 0.20), (0.46, 0.66)]
    dark = _shade(p.rgb, 0.5)

    def details(d: ImageDraw.ImageDraw) -> None:
        d.arc(_pt(s, handle), 180, 360, fill=dark, width=s // 28)
        if tote:
            d.arc(_pt(s, [(0.54, 0.20), (0.72, 0.66)]), 180, 360, fill=dark, width=s // 28)
        else:
            d.polygon(_pt(s, [(0.26, 0.44), (0.74, 0.44), (0.70, 0.60), (0.30, 0.60)]),
                      fill=_shade(p.rgb, 0.8))
            d.rectangle(_pt(s, [(0.47, 0.56), (0.53, 0.63)]), fill=(212, 175, 55))
    return details


def _hat(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    bucket = p.variant == "bucket"
    brim = (0.18, 0.82) if bucket else (0.08, 0.92)
    m.ellipse(_pt(s, [(brim[0], 0.56), (brim[1], 0.74)]), fill=255)
    if bucket:
        m.polygon(_pt(s, [(0.34, 0.30), (0.66, 0.30), (0.74, 0.64), (0.26, 0.64)]), fill=255)
        m.ellipse(_pt(s, [(0.34, 0.25), (0.66, 0.35)]), fill=255)
    else:
        m.rounded_rectangle(_pt(s, [(0.30, 0.26), (0.70, 0.66)]), radius=s // 10, fill=255)
    band = _shade(p.accent, 0.8)

    def details(d: ImageDraw.ImageDraw) -> None:
        x0, x1 = (0.275, 0.725) if bucket else (0.30, 0.70)
        d.rectangle(_pt(s, [(x0, 0.53), (x1, 0.60)]), fill=band)
        if not bucket:  # the crown's centre crease
            d.line(_pt(s, [(0.50, 0.28), (0.50, 0.42)]), fill=_shade(p.rgb, 0.6), width=s // 100)
        d.arc(_pt(s, [(brim[0], 0.56), (brim[1], 0.74)]), 0, 180,
              fill=_shade(p.rgb, 0.55), width=s // 150)
    return details


def _watch(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    m.rounded_rectangle(_pt(s, [(0.41, 0.04), (0.59, 0.96)]), radius=s // 40, fill=255)
    square = p.variant == "square"
    metal = (212, 175, 55) if rng.random() < 0.4 else (190, 192, 198)

    def details(d: ImageDraw.ImageDraw) -> None:
        case = _pt(s, [(0.31, 0.31), (0.69, 0.69)])
        face = _pt(s, [(0.345, 0.345), (0.655, 0.655)])
        d.rectangle(_pt(s, [(0.69, 0.47), (0.73, 0.53)]), fill=metal)
        if square:
            d.rounded_rectangle(case, radius=s // 20, fill=metal, outline=(90, 90, 90),
                                width=s // 250)
            d.rounded_rectangle(face, radius=s // 30, fill=(250, 250, 248))
        else:
            d.ellipse(case, fill=metal, outline=(90, 90, 90), width=s // 250)
            d.ellipse(face, fill=(250, 250, 248))
        cx = cy = 0.5 * s

        for h in range(12):
            a = math.radians(h * 30)
            r0, r1 = 0.125 * s, (0.105 if h % 3 else 0.095) * s
            d.line([(cx + r0 * math.sin(a), cy - r0 * math.cos(a)),
                    (cx + r1 * math.sin(a), cy - r1 * math.cos(a))], fill=(40, 40, 40),
                   width=s // 220)
        ha, ma = math.radians(rng.uniform(0, 360)), math.radians(rng.uniform(0, 360))
        d.line([(cx, cy), (cx + 0.07 * s * math.sin(ha), cy - 0.07 * s * math.cos(ha))],
               fill=(30, 30, 30), width=s // 110)
        d.line([(cx, cy), (cx + 0.11 * s * math.sin(ma), cy - 0.11 * s * math.cos(ma))],
               fill=(30, 30, 30), width=s // 170)
        d.ellipse([cx - s * 0.012, cy - s * 0.012, cx + s * 0.012, cy + s * 0.012],
                  fill=(30, 30, 30))
    return details


def _sunglasses(m: ImageDraw.ImageDraw, s: int, p: DemoProduct, rng: random.Random) -> Painter:
    rnd = p.variant == "round"
    lenses = [[(0.12, 0.40), (0.46, 0.66)], [(0.54, 0.40), (0.88, 0.66)]]
    for box in lenses:
        if rnd:
            m.ellipse(_pt(s, box), fill=255)
        else:
            m.rounded_rectangle(_pt(s, box), radius=s // 14, fill=255)
    m.rectangle(_pt(s, [(0.44, 0.44), (0.56, 0.48)]), fill=255)
    m.line(_pt(s, [(0.13, 0.45), (0.04, 0.36)]), fill=255, width=s // 60)
    m.line(_pt(s, [(0.87, 0.45), (0.96, 0.36)]), fill=255, width=s // 60)
    tint = _shade(p.accent, 0.35)

    def details(d: ImageDraw.ImageDraw) -> None:
        for (x0, y0), (x1, y1) in lenses:
            inner = _pt(s, [(x0 + 0.025, y0 + 0.025), (x1 - 0.025, y1 - 0.025)])
            if rnd:
                d.ellipse(inner, fill=tint)
            else:
                d.rounded_rectangle(inner, radius=s // 20, fill=tint)
            d.line(_pt(s, [(x0 + 0.06, y0 + 0.06), (x0 + 0.12, y0 + 0.04)]),
                   fill=_shade(tint, 1.6), width=s // 120)
    return details


SHAPES = {"tops": _top, "trousers": _trousers, "dresses": _dress, "sneakers": _sneaker,
          "boots": _boot, "bags": _bag, "hats": _hat, "watches": _watch,
          "sunglasses": _sunglasses}
# How far each category may rotate (degrees) and whether it may be mirrored.
POSE = {"tops": (6, False), "trousers": (6, False), "dresses": (6, False),
        "sneakers": (12, True), "boots": (10, True), "bags": (10, True), "hats": (12, True),
        "watches": (25, True), "sunglasses": (10, False)}


def draw_product(p: DemoProduct, size: int = 512) -> Image.Image:
    """The product's photo as an RGB image of ``size`` x ``size``."""
    rng = random.Random(f"photo/{p.seed}")
    s = size * SS
    mask = Image.new("L", (s, s), 0)
    details = SHAPES[p.category](ImageDraw.Draw(mask), s, p, rng)
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    layer.paste(_pattern_fill(s, p, rng), (0, 0), mask)
    # Outline: the ring a small box blur spreads outside the silhouette (cheap, no rank filter).
    edge = ImageChops.subtract(mask.filter(ImageFilter.BoxBlur(2)), mask).point(
        lambda v: 255 if v > 8 else 0)
    layer.paste(Image.new("RGBA", (s, s), (*_shade(p.rgb, 0.5), 255)), (0, 0), edge)
    details(ImageDraw.Draw(layer))

    max_rot, may_flip = POSE[p.category]
    if may_flip and rng.random() < 0.5:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = rng.uniform(0.72, 0.98)
    angle = rng.uniform(-max_rot, max_rot)
    # Downsample first, then rotate the small image: same look, a quarter of the work.
    small = layer.resize((int(size * scale), int(size * scale)), Image.Resampling.BOX)
    small = small.rotate(angle, resample=Image.Resampling.BICUBIC)
    slack = size - small.width
    dx = int(slack / 2 + rng.uniform(-0.4, 0.4) * slack)
    dy = int(slack / 2 + rng.uniform(-0.4, 0.4) * slack)
    photo = Image.new("RGB", (size, size), (255, 255, 255))
    # A faint floor shadow under the object's lowest pixels, as in studio product shots.
    left, _, right, bottom = small.getchannel("A").getbbox() or (0, 0, small.width, small.height)
    shadow = Image.new("L", (size, size), 0)
    width = right - left
    ImageDraw.Draw(shadow).ellipse([dx + left + width * 0.1, dy + bottom - size * 0.01,
                                    dx + right - width * 0.1, dy + bottom + size * 0.035],
                                   fill=45)
    shadow = shadow.filter(ImageFilter.GaussianBlur(size / 80))
    photo.paste((150, 150, 150), (0, 0), shadow)
    photo.paste(small, (dx, dy), small)
    return photo


def photo_jpegs(p: DemoProduct, sizes: tuple[int, ...] = (256, 512),
                quality: int = 88) -> dict[int, bytes]:
    """The product's photo as JPEG bytes at each size (drawn once at the largest, then
    downsized; deterministic for a given Pillow)."""
    big = draw_product(p, max(sizes))
    out = {}
    for size in sizes:
        img = big if size == big.width else big.resize((size, size), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        out[size] = buf.getvalue()
    return out
