"""Image validation and storage, shared by the crawler and the local import.

An image is accepted only if its bytes decode: Pillow ``verify()`` (structure) and then
a real ``load()`` (pixels; catches truncation), with Pillow's decompression-bomb limit
kept and its warning promoted to an error. Files are stored under
``images/<product id>.<ext>`` (extension from the decoded format, not the URL), written
atomically; a byte-identical image shared by several products is stored once, under the
id of the first product that brought it, and every row points at that one file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# Formats a browser shows and Pillow decodes; anything else is refused by name.
FORMAT_EXT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
              "BMP": ".bmp", "TIFF": ".tif"}
# Content types that may carry an image; servers often send octet-stream for images.
GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}


class ImageError(Exception):
    """The bytes are not an acceptable image; the message says why in one line."""


@dataclass(frozen=True)
class CheckedImage:
    """An image that decoded: its bytes, digest, format and size."""

    data: bytes
    sha256: str
    ext: str
    width: int
    height: int


def check_content_type(content_type: str) -> None:
    """Refuse responses that announce something other than an image (e.g. an HTML page)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype.startswith("image/") or ctype in GENERIC_TYPES:
        return
    raise ImageError(f"expected an image, got Content-Type {ctype}")


def check_image(data: bytes, max_pixels: int | None = None) -> CheckedImage:
    """Decode ``data`` fully and return it with its sha256 and right extension."""
    if not data:
        raise ImageError("empty file")
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format or ""
                if limit and im.width * im.height > limit:
                    raise ImageError(f"image is {im.width}x{im.height} pixels, over the "
                                     f"decompression-bomb limit of {limit}")
                im.verify()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                width, height = im.size
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"decompression bomb refused: {str(exc).split(',')[0]}") from None
    except Image.UnidentifiedImageError:
        raise ImageError("not a decodable image (unknown format or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower():
            raise ImageError("truncated image: " + msg) from None
        raise ImageError("corrupt image: " + msg) from None
    ext = FORMAT_EXT.get(fmt)
    if ext is None:
        raise ImageError(f"unsupported image format {fmt or 'unknown'}")
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), ext, width, height)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and os.replace,
    so a killed process leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_image(catalog: Path, product_id: str, image: CheckedImage,
                existing: str | None) -> str:
    """Store the image for ``product_id`` and return its path relative to ``catalog``.

    ``existing`` is the stored path of the same sha256 if one is known (then nothing is
    written). A file of the product's own name with other bytes (the shop changed the
    photo) is not overwritten when another row may point at it: the new bytes get a
    ``-<sha8>`` suffix.
    """
    if existing and (catalog / existing).is_file():
        return existing
    rel = f"images/{product_id}{image.ext}"
    target = catalog / rel
    if target.is_file():
        if hashlib.sha256(target.read_bytes()).hexdigest() == image.sha256:
            return rel
        rel = f"images/{product_id}-{image.sha256[:8]}{image.ext}"
        target = catalog / rel
    write_atomic(target, image.data)
    return rel
