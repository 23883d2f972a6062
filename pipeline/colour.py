"""A colour descriptor of a product photo's foreground, computed in the same decode pass as
the model input (see `pipeline.images.decode_for_model`).

CNN features barely see colour (precision@5 on fashion-small-2k's `baseColour` is 0.286
with the shared MobileNet), so the build blends them with this descriptor. What it is,
and why (each choice measured on fashion-small-2k; see README "Recommendation rows"):

- **CIELAB**, a perceptual colour space, instead of RGB: equal steps are about equally
  visible, and lightness is separate from colour.
- **Foreground only:** the background colour is the median of the photo's border pixels
  and pixels within 12 Delta-E of it are left out (product photos are shot on white or
  grey; a white shirt on white keeps its outline and shading). If less than 5% of the
  photo would remain, all pixels count.
- **Centre weight:** pixels count less towards the edges (Gaussian fall-off), where a
  model's face, a second garment or a prop usually is.
- **A soft joint histogram** of 5 x 12 x 12 bins over L, a and b, each pixel spread over
  its eight nearest bins (no hard bin edges). Before binning, a and b are stretched 3x
  and clipped at +-80, which makes the bins fine near grey (navy against black, cream
  against white) and coarse for saturated colours, where shoppers see differences easily.
- The square root of the normalised histogram, L2-normalised (Hellinger), so the cosine
  of two descriptors is the Bhattacharyya coefficient of the two colour distributions.
- **Centred on the catalog** (`centre_colours`): the build subtracts the catalog's mean
  descriptor and normalises again, so two products are alike in colour when they differ
  from the catalog's usual colours in the same way (most shops share a lot of white,
  black and skin tones). The mean is stored with the folder and applied to uploads.
  On fashion-small-2k this moved baseColour precision@5 at the same articleType
  precision from 0.394 to 0.404 (bench/bench_rows.py).

Only numpy and Pillow: dynamic mode computes the same descriptor for an upload.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

COLOUR_VERSION = "lab-5x12x12-fg-centre-v1"  # part of the feature cache key
L_BINS, AB_BINS = 5, 12
COLOUR_DIM = L_BINS * AB_BINS * AB_BINS
AB_GAIN = 3.0
AB_RANGE = 80.0
BACKGROUND_DELTA_E = 12.0
MIN_FOREGROUND = 0.05
CENTRE_FALLOFF = 1.0
MAX_SIDE = 96  # the descriptor is computed on a copy at most this many pixels on a side

_SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def _linear(c: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] to linear light (float64)."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


_LINEAR_OF_UINT8 = _linear(np.arange(256) / 255.0)  # the same values, looked up


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of uint8 sRGB values, shape (..., 3) -> float64 (..., 3)."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        c = _LINEAR_OF_UINT8[rgb]
    else:
        c = _linear(np.asarray(rgb, dtype=np.float64) / 255.0)
    xyz = c @ _SRGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def foreground_mask(lab: np.ndarray) -> np.ndarray:
    """Pixels further than BACKGROUND_DELTA_E from the median border colour (all pixels
    when that leaves less than MIN_FOREGROUND of the photo)."""
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    background = np.median(border, axis=0)
    mask = np.linalg.norm(lab - background, axis=-1) > BACKGROUND_DELTA_E
    if mask.mean() < MIN_FOREGROUND:
        mask = np.ones_like(mask)
    return mask


def _centre_weights(h: int, w: int) -> np.ndarray:
    yy = (np.arange(h) + 0.5) / h * 2 - 1
    xx = (np.arange(w) + 0.5) / w * 2 - 1
    return np.exp(-CENTRE_FALLOFF * (yy[:, None] ** 2 + xx[None, :] ** 2))


def _bin_coords(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 3) Lab values -> each value's lower bin per axis, its fraction towards the next
    bin, and the last bin per axis."""
    coords = np.empty_like(lab)
    coords[:, 0] = lab[:, 0] / 100 * L_BINS - 0.5
    ab = np.clip(lab[:, 1:] * AB_GAIN, -AB_RANGE, AB_RANGE)
    coords[:, 1:] = (ab + AB_RANGE) / (2 * AB_RANGE) * AB_BINS - 0.5
    top = np.array([L_BINS - 1, AB_BINS - 1, AB_BINS - 1])
    coords = np.clip(coords, 0, top)
    low = np.floor(coords).astype(np.int64)
    return low, coords - low, top


def _soft_histogram(lab: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Trilinear-interpolated L x a x b histogram of (n, 3) Lab values."""
    low, frac, top = _bin_coords(lab)
    # per axis, the (bin, weight) of the lower and of the upper neighbour, made once
    sides = [
        ((low[:, d].copy(), 1 - frac[:, d]), (np.minimum(low[:, d] + 1, top[d]), frac[:, d]))
        for d in range(3)
    ]
    hist = np.zeros(COLOUR_DIM)
    for corner in range(8):  # one bincount per corner: the sums of the v1 descriptor, bit for bit
        (il, wl), (ia, wa), (ib, wb) = (sides[d][(corner >> (2 - d)) & 1] for d in range(3))
        flat = (il * AB_BINS + ia) * AB_BINS + ib
        hist += np.bincount(flat, weights=wl * wa * wb * weights, minlength=COLOUR_DIM)
    return hist


def colour_descriptor(img: Image.Image) -> np.ndarray:
    """The COLOUR_DIM float32 descriptor of an RGB photo (unit length; see module doc)."""
    if max(img.size) > MAX_SIDE:
        img = img.copy()
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    rgb = np.asarray(img.convert("RGB"))
    lab = srgb_to_lab(rgb)
    mask = foreground_mask(lab)
    weights = _centre_weights(*mask.shape)[mask]
    hist = _soft_histogram(lab[mask], weights)
    hist = np.sqrt(hist / max(hist.sum(), 1e-12))
    norm = np.linalg.norm(hist)
    return (hist / (norm or 1.0)).astype(np.float32)


def centre_colours(descriptors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Descriptors minus the catalog's mean descriptor, as float32 unit rows (a row equal
    to the mean stays zero: it is like nothing in colour)."""
    x = np.atleast_2d(np.asarray(descriptors, dtype=np.float32)) - np.asarray(mean, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)
