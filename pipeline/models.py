"""Feature extractors: VGG16 fc2 (default), ResNet50 (average-pooled), or any Keras file.

TensorFlow/Keras is imported only inside `load_extractor`, never at module import.
Every extractor carries an identity (name, layer, weights, weights_sha256, input_size,
dim, precision) that goes into meta.json and keys the feature cache.

`precision` is the compute type: `float32`, or `bfloat16` (Keras's `mixed_bfloat16` policy:
float32 weights, bfloat16 matmuls and convolutions, float32 features out). `auto` takes
bfloat16 where the CPU has AMX or AVX512-BF16 (`/proc/cpuinfo`) and float32 elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN_MODELS = ("vgg16", "resnet50")
PRECISIONS = ("auto", "float32", "bfloat16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # what makes bfloat16 faster than float32
CHUNK_ELEMENTS = 4 * 2**20  # float32 elements per slice when setting or hashing weights
# File names Keras's own loader caches the ImageNet weights under (keras/src/applications).
IMAGENET_WEIGHT_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


class ModelError(RuntimeError):
    """A model cannot be loaded or does not match what a catalog was built with."""


def keras_cache_dir() -> Path:
    """Where Keras caches downloaded weights (`$KERAS_HOME/models` or `~/.keras/models`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cpu_model_and_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags (empty where /proc/cpuinfo is absent)."""
    model, flags = "unknown CPU", set()
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def bf16_cpu_flags(flags: set[str] | None = None) -> list[str]:
    """Which of AMX-BF16 / AVX512-BF16 the CPU has (`flags` default: this machine's)."""
    if flags is None:
        flags = cpu_model_and_flags()[1]
    return [f for f in BF16_CPU_FLAGS if f in flags]


def resolve_precision(precision: str, flags: set[str] | None = None) -> str:
    """`float32` or `bfloat16` for `--precision`: `auto` is bfloat16 where the CPU has
    bfloat16 instructions (`bf16_cpu_flags`), else float32."""
    if precision not in PRECISIONS:
        raise ModelError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if bf16_cpu_flags(flags) else "float32"
    return precision


@contextlib.contextmanager
def _dtype_policy(precision: str) -> Iterator[None]:
    """Layers built inside take `mixed_bfloat16` for bfloat16 (float32: unchanged)."""
    import keras

    before = keras.config.dtype_policy()
    if precision == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _as_bfloat16(model: Any) -> Any:
    """The same model and weights, computing in bfloat16 (a loaded file keeps the float32
    policy it was saved with, so its layers are re-made under mixed_bfloat16)."""
    import keras

    def remake(layer: Any) -> Any:
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=remake)
    clone.set_weights(model.get_weights())
    return clone


@dataclass
class FeatureExtractor:
    """A loaded model that maps uint8 RGB batches (N, H, W, 3) to float32 features (N, dim)."""

    identity: dict[str, Any]
    model: Any
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None
    calls: int = field(default=0, init=False)  # model invocations, for tests and progress

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the model takes."""
        w, h = self.identity["input_size"]
        return int(w), int(h)

    @property
    def key(self) -> str:
        """Short stable key of the model identity, used to name the feature cache."""
        return model_key(self.identity)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Features for a uint8 batch of images, float32, one row per image."""
        x = np.asarray(batch, dtype=np.float32)
        if self.preprocess is not None:
            x = self.preprocess(x)
        self.calls += 1
        out = self.model.predict_on_batch(x)
        return np.asarray(out, dtype=np.float32).reshape(len(batch), -1)


def model_key(identity: dict[str, Any]) -> str:
    """A filesystem-safe key of what determines the features (not where files live)."""
    parts = [identity["name"], identity["layer"], identity["weights_sha256"]]
    parts += [str(v) for v in identity["input_size"]]
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]
    return f"{identity['name'].replace('/', '_')}-{identity['layer']}-{digest}"


def _row_slices(shape: tuple[int, ...]) -> list[slice]:
    """Slices along axis 0 of about CHUNK_ELEMENTS each (keeps copies of big layers small)."""
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    rows = max(1, CHUNK_ELEMENTS // max(per_row, 1))
    return [slice(i, i + rows) for i in range(0, shape[0], rows)] if shape else [slice(None)]


def _weights_digest(model: Any) -> str:
    """sha256 over all weights, read a slice at a time."""
    h = hashlib.sha256()
    for w in model.weights:
        shape = tuple(w.shape)
        for sl in _row_slices(shape) if shape else [()]:
            h.update(np.ascontiguousarray(np.asarray(w.value[sl])).tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def _kernel_initialiser(seed: int | None) -> Iterator[None]:
    """Build layers with cheap kernels instead of Keras's random initialisers.

    `seed=None`: zeros, for weights that are loaded right after. Otherwise Glorot-uniform
    kernels from a seeded numpy generator, one stream per kernel in build order. Keras's
    own initialisers leave about 800 MB more resident at VGG16's size, and assigning
    weights after the build keeps another 400 MB (measured: steady RSS 2.0 and 1.6 GiB
    against 1.2 GiB this way).
    """
    import keras

    counter = itertools.count()

    def initialise(self: Any, shape: tuple[int, ...], dtype: Any = None) -> Any:
        if seed is None:
            return keras.ops.zeros(shape, dtype=dtype)
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.float32(np.sqrt(6.0 / (fan_in + fan_out)))
        values = np.random.default_rng([seed, next(counter)]).random(shape, dtype=np.float32)
        values *= 2 * limit
        values -= limit
        return keras.ops.convert_to_tensor(values, dtype=dtype)

    cls = keras.initializers.VarianceScaling
    original = cls.__call__
    cls.__call__ = initialise
    try:
        yield
    finally:
        cls.__call__ = original


def _missing_weights_error(name: str, cause: BaseException) -> ModelError:
    fname = IMAGENET_WEIGHT_FILES[name]
    return ModelError(
        f"{name} ImageNet weights unavailable: {fname} is not in {keras_cache_dir()} and could "
        f"not be downloaded ({type(cause).__name__}). Copy {fname} from Keras's "
        f"keras-applications release into {keras_cache_dir()} (or set KERAS_HOME), "
        "or pass --weights random for a smoke test"
    )


def _builtin(name: str, weights: str, seed: int, precision: str) -> FeatureExtractor:
    import keras

    if weights not in ("imagenet", "random") and not Path(weights).is_file():
        raise ModelError(f"--weights {weights}: not 'imagenet', 'random' or an existing file")
    keras_weights = {"imagenet": "imagenet", "random": None}.get(weights, weights)
    try:
        with _kernel_initialiser(seed if weights == "random" else None), _dtype_policy(precision):
            if name == "vgg16":
                base = keras.applications.VGG16(weights=keras_weights, include_top=True)
                layer = "fc2"
                model = keras.Model(base.input, base.get_layer(layer).output, name="vgg16_fc2")
                preprocess = keras.applications.vgg16.preprocess_input
            else:
                model = keras.applications.ResNet50(  # without the top, fix the input size
                    weights=keras_weights, include_top=False, pooling="avg",
                    input_shape=(224, 224, 3),
                )
                layer = "avg_pool"
                preprocess = keras.applications.resnet50.preprocess_input
    except (OSError, ValueError) as e:
        cached = keras_cache_dir() / IMAGENET_WEIGHT_FILES[name]
        if weights == "imagenet" and not cached.is_file():
            raise _missing_weights_error(name, e) from None
        raise ModelError(f"{name}: cannot load weights {weights} ({e})") from None
    except Exception as e:  # urllib / http errors from Keras's downloader
        if weights == "imagenet":
            raise _missing_weights_error(name, e) from None
        raise
    if weights == "imagenet":
        wfile = keras_cache_dir() / IMAGENET_WEIGHT_FILES[name]
        weights_sha = file_sha256(wfile) if wfile.is_file() else _weights_digest(model)
    elif weights == "random":
        weights_sha = _weights_digest(model)
    else:
        weights_sha = file_sha256(weights)
    h, w = model.input_shape[1:3]
    identity = {
        "name": name,
        "layer": layer,
        "weights": weights if weights in ("imagenet", "random") else Path(weights).name,
        "weights_sha256": weights_sha,
        "input_size": [int(w), int(h)],
        "dim": int(model.output_shape[-1]),
        "precision": precision,
    }
    return FeatureExtractor(identity=identity, model=model, preprocess=preprocess)


def _keras_file(path: str | Path, precision: str) -> FeatureExtractor:
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:
        raise ModelError(f"{path}: cannot load Keras model ({type(e).__name__}: {e})") from None
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f"{path}: expected one image input (None, H, W, 3), got {shape}")
    if shape[1] is None or shape[2] is None:
        raise ModelError(f"{path}: input size must be fixed, got {shape}")
    out_rank = len(model.output_shape)
    layer = model.layers[-1].name
    if out_rank == 4:  # a feature map: average-pool it to one vector
        pooled = keras.layers.GlobalAveragePooling2D()(model.output)
        model = keras.Model(model.input, pooled)
        layer += "+avg"
    elif out_rank != 2:
        raise ModelError(f"{path}: output must be a vector or a 4-D map, got {model.output_shape}")
    if precision == "bfloat16":
        model = _as_bfloat16(model)
    identity = {
        "name": f"file:{path.name}",
        "layer": layer,
        "weights": path.name,
        "weights_sha256": file_sha256(path),
        "input_size": [int(shape[2]), int(shape[1])],
        "dim": int(model.output_shape[-1]),
        "path": str(path),
        "precision": precision,
    }
    return FeatureExtractor(identity=identity, model=model, preprocess=None)


def is_model_file(model: str) -> bool:
    """Whether `--model` names a Keras model file (else a built-in name, or unknown)."""
    if model in BUILTIN_MODELS:
        return False
    return model.endswith((".keras", ".h5")) or os.sep in model or Path(model).exists()


def load_extractor(
    model: str = "vgg16", weights: str = "imagenet", seed: int = 0, precision: str = "float32"
) -> FeatureExtractor:
    """Load a feature extractor.

    `model` is `vgg16` (layer fc2, 4096-d), `resnet50` (average-pooled, 2048-d) or the path
    of a Keras model file (raw RGB 0-255 in). `weights` applies to the built-in models:
    `imagenet` (through Keras's cache), `random` (seeded, for tests) or a weights file.
    `precision`: float32, bfloat16 or auto (see `resolve_precision`).
    """
    precision = resolve_precision(precision)
    if model in BUILTIN_MODELS:
        return _builtin(model, weights, seed, precision)
    if is_model_file(model):
        return _keras_file(model, precision)
    raise unknown_model_error(model)


def unknown_model_error(model: str) -> ModelError:
    """The error for a `--model` that is neither a built-in name nor a model file."""
    return ModelError(
        f"unknown model {model!r}: use {', '.join(BUILTIN_MODELS)} or the path of a .keras file"
    )


def check_identity(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Raise ModelError unless `actual` is the model `expected` describes (name, layer, weights)."""
    for key in ("name", "layer", "weights_sha256", "dim"):
        if expected.get(key) != actual.get(key):
            raise ModelError(
                f"model mismatch: catalog was built with {key}={expected.get(key)!r}, "
                f"loaded model has {key}={actual.get(key)!r}"
            )
