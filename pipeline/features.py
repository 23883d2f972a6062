"""Batched embedding of images, with a feature cache keyed by image sha256.

Each image is decoded once into the model input and its colour descriptor. The cache is
a folder per `cache_key` (model identity, resize policy, precision, colour version)
holding `.npz` shards (sha256 list, float32 features, float32 colour descriptors).
Shards are flushed and renamed into place every few hundred images, so a crash loses at
most one shard of work, and a re-run embeds only images whose sha256 it has not seen.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .colour import COLOUR_VERSION
from .images import ImageError, ResizePolicy, decode_for_model

DEFAULT_BATCH = 32
SHARD_EVERY = 512


def default_cache_dir() -> Path:
    """`$LOOKALIKE_CACHE`, else `$XDG_CACHE_HOME/lookalike/features`, else ~/.cache/..."""
    if os.environ.get("LOOKALIKE_CACHE"):
        return Path(os.environ["LOOKALIKE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike" / "features"


def cache_key(model_key: str, resize: str, precision: str = "float32") -> str:
    """The cache folder of everything that changes a stored row: the model identity (input
    size included), the resize policy, the compute precision and the colour descriptor's
    version."""
    return f"{model_key}-{resize}-{precision}-{COLOUR_VERSION}"


@dataclass
class FeatureCache:
    """Features and colour descriptors by image sha256, persisted as shards under `folder`."""

    folder: Path
    features: dict[str, np.ndarray] = field(default_factory=dict)
    colours: dict[str, np.ndarray] = field(default_factory=dict)
    damaged: list[Path] = field(default_factory=list)

    @classmethod
    def open(cls, root: Path, key: str, wanted: set[str] | None = None) -> FeatureCache:
        """Load the shards of one cache key (only the `wanted` sha256s, if given).

        A shard that cannot be read (torn by a crash, truncated, zero bytes) is renamed to
        `damaged-*.npz` with one warning; its images are simply embedded again.
        """
        folder = Path(root) / key
        cache = cls(folder=folder)
        for shard in sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []:
            try:
                with np.load(shard) as z:
                    keys, feats, colours = z["sha256"], z["features"], z["colours"]
                if not (len(keys) == len(feats) == len(colours)):
                    raise ValueError("arrays of different lengths")
            except Exception as e:
                cache._set_aside(shard, e)
                continue
            for sha, row, colour in zip(keys.tolist(), feats, colours, strict=True):
                if wanted is None or sha in wanted:
                    cache.features[sha] = row
                    cache.colours[sha] = colour
        return cache

    def _set_aside(self, shard: Path, error: Exception) -> None:
        aside = shard.with_name("damaged-" + shard.name.removeprefix("shard-"))
        with contextlib.suppress(OSError):
            os.replace(shard, aside)
        self.damaged.append(aside)
        warnings.warn(
            f"feature cache shard {shard} is unreadable ({type(error).__name__}); moved to "
            f"{aside.name}, its images are embedded again",
            stacklevel=3,
        )

    def save(self, keys: Sequence[str], feats: np.ndarray, colours: np.ndarray) -> None:
        """Persist a new shard atomically (flushed to disk before the rename) and keep its
        rows in memory."""
        if not len(keys):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns():020d}-{os.getpid()}"
        tmp = self.folder / f".tmp-{stamp}.npz"
        with open(tmp, "wb") as f:
            np.savez(
                f, sha256=np.asarray(keys), features=np.asarray(feats, dtype=np.float32),
                colours=np.asarray(colours, dtype=np.float32),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / f"shard-{stamp}.npz")
        for key, row, colour in zip(keys, feats, colours, strict=True):
            self.features[key] = np.asarray(row, dtype=np.float32)
            self.colours[key] = np.asarray(colour, dtype=np.float32)


@dataclass
class EmbedItem:
    """One unique image to embed: its sha256 and its file path or bytes."""

    sha256: str
    source: Path | bytes


Decoded = tuple[np.ndarray, np.ndarray]  # model input, colour descriptor


def _decode(item: EmbedItem, size: tuple[int, int], policy: ResizePolicy) -> Decoded | str:
    try:
        return decode_for_model(item.source, size, policy)
    except ImageError as e:
        return str(e)


def decoded_batches(
    items: Sequence[EmbedItem],
    size: tuple[int, int],
    policy: ResizePolicy,
    batch: int,
    threads: int = 2,
) -> Iterator[
    tuple[list[EmbedItem], np.ndarray | None, np.ndarray | None, list[tuple[EmbedItem, str]]]
]:
    """Yield (ok items, uint8 batch, colour descriptors, failures), decoding ahead in threads.

    Pillow releases the GIL while decoding, so the next batch decodes while the model
    runs on the current one.
    """
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    ahead = 2  # batches decoding ahead of the model

    def submit(chunk: Sequence[EmbedItem]) -> list[Future]:
        return [pool.submit(_decode, it, size, policy) for it in chunk]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        queued = [submit(c) for c in chunks[:ahead]]
        for i, chunk in enumerate(chunks):
            results = [f.result() for f in queued.pop(0)]
            if i + ahead < len(chunks):
                queued.append(submit(chunks[i + ahead]))
            ok = [(it, r) for it, r in zip(chunk, results, strict=True) if not isinstance(r, str)]
            bad = [(it, r) for it, r in zip(chunk, results, strict=True) if isinstance(r, str)]
            arr = np.stack([r[0] for _, r in ok]) if ok else None
            colours = np.stack([r[1] for _, r in ok]) if ok else None
            yield [it for it, _ in ok], arr, colours, bad


def embed_items(
    items: Sequence[EmbedItem],
    embed: Callable[[np.ndarray], np.ndarray],
    size: tuple[int, int],
    policy: ResizePolicy = "pad",
    batch: int = DEFAULT_BATCH,
    on_shard: Callable[[list[str], np.ndarray, np.ndarray], None] | None = None,
    progress: bool = False,
    shard_every: int = SHARD_EVERY,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Embed images in batches; return ({sha256: features}, {sha256: colour}, {sha256: error}).

    `on_shard(keys, features, colours)` is called every `shard_every` images (and at the
    end) with what was embedded since the last call, so the caller can persist progress.
    """
    out: dict[str, np.ndarray] = {}
    colours: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    pending_keys: list[str] = []
    pending_feats: list[np.ndarray] = []
    pending_colours: list[np.ndarray] = []
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="embedding", unit="img")

    def flush() -> None:
        if on_shard and pending_keys:
            on_shard(
                list(pending_keys), np.concatenate(pending_feats), np.concatenate(pending_colours)
            )
        pending_keys.clear()
        pending_feats.clear()
        pending_colours.clear()

    for ok, arr, cols, bad in decoded_batches(items, size, policy, batch):
        for it, err in bad:
            errors[it.sha256] = err
        if arr is not None and cols is not None:
            feats = embed(arr)
            for it, row, colour in zip(ok, feats, cols, strict=True):
                out[it.sha256] = row
                colours[it.sha256] = colour
            pending_keys.extend(it.sha256 for it in ok)
            pending_feats.append(feats)
            pending_colours.append(cols)
        if bar is not None:
            bar.update(len(ok) + len(bad))
        if len(pending_keys) >= shard_every:
            flush()
    flush()
    if bar is not None:
        bar.close()
    return out, colours, errors


def unique_items(pairs: Iterable[tuple[str, Path]]) -> list[EmbedItem]:
    """One EmbedItem per distinct sha256 (first path wins), in first-seen order."""
    seen: dict[str, EmbedItem] = {}
    for sha, path in pairs:
        seen.setdefault(sha, EmbedItem(sha, path))
    return list(seen.values())
