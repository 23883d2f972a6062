"""Decoding odd photos: modes, EXIF rotation, aspect ratios, bombs, animation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.images import ImageError, fit_to_input, load_image, model_input, thumbnail_jpeg


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"),
     ("LA", "PNG"), ("1", "PNG"), ("RGB", "WEBP")],
)
def test_every_mode_becomes_rgb(mode, fmt):
    src = Image.new("RGB", (40, 30), (200, 40, 40)).convert(mode)
    img = load_image(encode(src, fmt))
    assert img.mode == "RGB" and img.size == (40, 30)


def test_transparency_is_composited_on_white():
    src = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    src.putpixel((5, 5), (255, 0, 0, 255))
    arr = np.asarray(load_image(encode(src, "PNG")))
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[5, 5]) == (255, 0, 0)


def test_sixteen_bit_range_is_scaled_not_clipped():
    src = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    arr = np.asarray(load_image(encode(src, "PNG")))
    assert 120 <= arr[0, 0, 0] <= 135


def test_exif_rotation_is_applied():
    src = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img = load_image(encode(src, "JPEG", exif=exif.tobytes()))
    assert img.size == (20, 60)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("P", (12, 12), c) for c in (1, 2, 3)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert load_image(data).size == (12, 12)


@pytest.mark.parametrize("size", [(300, 40), (40, 300), (1, 1), (224, 224)])
def test_pad_keeps_the_whole_photo_without_distortion(size):
    img = Image.new("RGB", size, (0, 0, 0))
    out = np.asarray(fit_to_input(img, (224, 224), "pad"))
    assert out.shape == (224, 224, 3)
    dark = np.argwhere(out.mean(axis=2) < 128)
    h, w = dark.max(axis=0) - dark.min(axis=0) + 1
    ratio = size[0] / size[1]
    assert w / h == pytest.approx(ratio, rel=0.1) or min(size) == 1
    assert out.min() == 0  # the photo is there


def test_stretch_and_crop_policies():
    img = Image.new("RGB", (300, 100), (0, 0, 0))
    assert np.asarray(fit_to_input(img, (64, 64), "stretch")).max() == 0  # all photo
    assert np.asarray(fit_to_input(img, (64, 64), "crop")).max() == 0
    with pytest.raises(ValueError, match="unknown resize policy"):
        fit_to_input(img, (64, 64), "squash")


def test_model_input_shape_and_dtype():
    arr = model_input(encode(Image.new("RGB", (90, 60), "red"), "JPEG"), (224, 160))
    assert arr.shape == (160, 224, 3) and arr.dtype == np.uint8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not an image"),
        (b"<html>nope</html>", "not an image"),
        (encode(Image.new("RGB", (50, 50), "red"), "JPEG")[:200], "unreadable"),
    ],
)
def test_bad_bytes_raise_image_error(data, reason):
    with pytest.raises(ImageError, match=reason):
        load_image(data)


def test_decompression_bomb_is_refused_before_decoding():
    # A 1-bit PNG of 20000 x 20000 pixels is tiny on disk but 400 megapixels.
    data = encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    assert len(data) < 200_000
    with pytest.raises(ImageError, match=r"pixels|bomb"):
        load_image(data)


def test_missing_file():
    with pytest.raises(ImageError, match="file not found"):
        load_image("/nonexistent/photo.jpg")


def test_thumbnail_longest_side():
    jpeg = thumbnail_jpeg(Image.new("RGB", (1000, 400), "blue"))
    with Image.open(io.BytesIO(jpeg)) as t:
        assert t.size == (256, 102) and t.format == "JPEG"
    small = thumbnail_jpeg(Image.new("RGB", (60, 80), "blue"))
    with Image.open(io.BytesIO(small)) as t:
        assert t.size == (60, 80)  # never upscaled
