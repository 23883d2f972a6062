"""Decoding product photos and turning them into model input and thumbnails.

One module for every place that reads a photo (the build and dynamic mode's uploads), so
an uploaded photo gets exactly the preprocessing the catalog got.

Resize policy (`pad`, the default): the whole photo is kept, scaled to fit the model's
square input without distortion, and the rest is filled with white. Product photos are
shot on white, so white padding adds no edges, and nothing of the product is cut off (a
centre crop loses the toes of a shoe in a wide photo; stretching makes a tall dress
look like a different, wider dress). `stretch` and `crop` are options.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import IO, Literal

import numpy as np
from PIL import Image, ImageOps

from .colour import colour_descriptor

ResizePolicy = Literal["pad", "stretch", "crop"]
RESIZE_POLICIES: tuple[str, ...] = ("pad", "stretch", "crop")
BACKGROUND = (255, 255, 255)
THUMB_SIZE = 256
# Pillow's own decompression-bomb guard (about 89 megapixels) is kept; this makes the
# warning zone an error as well, so a bomb never reaches `load()`.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageError(ValueError):
    """A file that is not a usable image; the message says why in a few words."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the real range to 0-255 instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0
        scale = 255.0 / 65535.0 if hi > 255 else 1.0
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return img


def load_image(
    source: str | Path | bytes | IO[bytes],
    draft_size: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Decode a photo to an upright 8-bit RGB image.

    Handles EXIF orientation, greyscale/palette/CMYK/16-bit/alpha, and animated files
    (first frame). `draft_size` lets JPEG decode at a reduced scale (much faster for big
    photos); more than `max_pixels` pixels is refused before decoding. Raises ImageError
    with a short reason for anything that is not a usable image.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)
            if img.width * img.height > max_pixels:
                raise ImageError(
                    f"too many pixels ({img.width}x{img.height}; limit {max_pixels:,})"
                )
            if getattr(img, "is_animated", False):
                img.seek(0)
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"too many pixels (decompression bomb guard: {e})") from None
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except Image.UnidentifiedImageError:
        raise ImageError("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"unreadable image ({e})") from None
    if img.width < 1 or img.height < 1:
        raise ImageError("empty image")
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img)
    return _to_rgb(img)


def fit_to_input(
    img: Image.Image, size: tuple[int, int], policy: ResizePolicy = "pad"
) -> Image.Image:
    """Resize an RGB image to `size` (width, height) following the resize policy."""
    w, h = size
    if policy == "stretch":
        return img.resize((w, h), Image.Resampling.BILINEAR)
    if policy == "crop":
        return ImageOps.fit(img, (w, h), Image.Resampling.BILINEAR)
    if policy == "pad":
        scale = min(w / img.width, h / img.height)
        nw, nh = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        resized = img.resize((nw, nh), Image.Resampling.BILINEAR)
        if (nw, nh) == (w, h):
            return resized
        canvas = Image.new("RGB", (w, h), BACKGROUND)
        canvas.paste(resized, ((w - nw) // 2, (h - nh) // 2))
        return canvas
    raise ValueError(f"unknown resize policy {policy!r}; use one of {', '.join(RESIZE_POLICIES)}")


def model_input(
    source: str | Path | bytes | IO[bytes] | Image.Image,
    size: tuple[int, int],
    policy: ResizePolicy = "pad",
) -> np.ndarray:
    """A photo as the uint8 (height, width, 3) array a feature extractor takes."""
    img = source if isinstance(source, Image.Image) else load_image(source, max(size))
    return np.asarray(fit_to_input(_to_rgb(img), size, policy), dtype=np.uint8)


def decode_for_model(
    source: str | Path | bytes | IO[bytes] | Image.Image,
    size: tuple[int, int],
    policy: ResizePolicy = "pad",
) -> tuple[np.ndarray, np.ndarray]:
    """One decode of a photo, two results: the model input (as `model_input`) and the
    colour descriptor (`pipeline.colour.colour_descriptor`) of the same decoded image."""
    img = source if isinstance(source, Image.Image) else load_image(source, max(size))
    img = _to_rgb(img)
    return np.asarray(fit_to_input(img, size, policy), dtype=np.uint8), colour_descriptor(img)


def thumbnail_jpeg(img: Image.Image, max_side: int = THUMB_SIZE, quality: int = 85) -> bytes:
    """JPEG bytes of the photo with its longest side at most `max_side` pixels."""
    thumb = img.copy()
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()
