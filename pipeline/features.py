"""Batched embedding of images, with a feature cache keyed by image sha256 + model identity.

The cache is a folder per model key holding `.npz` shards (sha256 list + float32
features). Shards are written atomically every few hundred images, so a crash loses at
most one shard of work, and a re-run embeds only images whose sha256 it has not seen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .images import ImageError, ResizePolicy, model_input

DEFAULT_BATCH = 32
SHARD_EVERY = 512


def default_cache_dir() -> Path:
    """`$LOOKALIKE_CACHE`, else `$XDG_CACHE_HOME/lookalike/features`, else ~/.cache/..."""
    if os.environ.get("LOOKALIKE_CACHE"):
        return Path(os.environ["LOOKALIKE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike" / "features"


@dataclass
class FeatureCache:
    """Features of one model, by image sha256, persisted as shards under `folder`."""

    folder: Path
    features: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path, model_key: str, wanted: set[str] | None = None) -> FeatureCache:
        """Load the shards of one model (only the `wanted` sha256s, if given)."""
        folder = Path(root) / model_key
        cache = cls(folder=folder)
        for shard in sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []:
            try:
                with np.load(shard) as z:
                    keys, feats = z["sha256"], z["features"]
            except (OSError, ValueError, KeyError):
                continue  # a torn shard from an old crash: its images are simply re-embedded
            for key, row in zip(keys.tolist(), feats, strict=True):
                if wanted is None or key in wanted:
                    cache.features[key] = row
        return cache

    def save(self, keys: Sequence[str], feats: np.ndarray) -> None:
        """Persist a new shard atomically and keep its rows in memory."""
        if not len(keys):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.time_ns():020d}-{os.getpid()}"
        tmp = self.folder / f".tmp-{stamp}.npz"
        np.savez(tmp, sha256=np.asarray(keys), features=np.asarray(feats, dtype=np.float32))
        os.replace(tmp, self.folder / f"shard-{stamp}.npz")
        for key, row in zip(keys, feats, strict=True):
            self.features[key] = np.asarray(row, dtype=np.float32)


@dataclass
class EmbedItem:
    """One unique image to embed: its sha256 and its file path or bytes."""

    sha256: str
    source: Path | bytes


def _decode(item: EmbedItem, size: tuple[int, int], policy: ResizePolicy) -> np.ndarray | str:
    try:
        return model_input(item.source, size, policy)
    except ImageError as e:
        return str(e)


def decoded_batches(
    items: Sequence[EmbedItem],
    size: tuple[int, int],
    policy: ResizePolicy,
    batch: int,
    threads: int = 2,
) -> Iterator[tuple[list[EmbedItem], np.ndarray | None, list[tuple[EmbedItem, str]]]]:
    """Yield (ok items, uint8 batch, failures) with decoding running ahead in threads.

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
            arr = np.stack([r for _, r in ok]) if ok else None
            yield [it for it, _ in ok], arr, bad


def embed_items(
    items: Sequence[EmbedItem],
    embed: Callable[[np.ndarray], np.ndarray],
    size: tuple[int, int],
    policy: ResizePolicy = "pad",
    batch: int = DEFAULT_BATCH,
    on_shard: Callable[[list[str], np.ndarray], None] | None = None,
    progress: bool = False,
    shard_every: int = SHARD_EVERY,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embed images in batches; return ({sha256: features}, {sha256: error}).

    `on_shard` is called every `shard_every` images (and at the end) with what was embedded
    since the last call, so the caller can persist progress.
    """
    out: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    pending_keys: list[str] = []
    pending_feats: list[np.ndarray] = []
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="embedding", unit="img")

    def flush() -> None:
        if on_shard and pending_keys:
            on_shard(list(pending_keys), np.concatenate(pending_feats))
        pending_keys.clear()
        pending_feats.clear()

    for ok, arr, bad in decoded_batches(items, size, policy, batch):
        for it, err in bad:
            errors[it.sha256] = err
        if arr is not None:
            feats = embed(arr)
            for it, row in zip(ok, feats, strict=True):
                out[it.sha256] = row
            pending_keys.extend(it.sha256 for it in ok)
            pending_feats.append(feats)
        if bar is not None:
            bar.update(len(ok) + len(bad))
        if len(pending_keys) >= shard_every:
            flush()
    flush()
    if bar is not None:
        bar.close()
    return out, errors


def unique_items(pairs: Iterable[tuple[str, Path]]) -> list[EmbedItem]:
    """One EmbedItem per distinct sha256 (first path wins), in first-seen order."""
    seen: dict[str, EmbedItem] = {}
    for sha, path in pairs:
        seen.setdefault(sha, EmbedItem(sha, path))
    return list(seen.values())
