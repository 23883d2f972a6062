"""Running the build's two heavy stages on Dask (a LocalCluster or an existing scheduler).

The stages are the same functions the local engine calls, cut at the same places, so
the results are identical: embedding runs in chunks whose size is a multiple of the
batch size (so every model call sees the same batch as locally), and top-k runs the same
row blocks. Image bytes travel with the tasks, so workers need no shared filesystem;
the model is loaded once per worker process and kept.

`pipeline.build` calls this module, never the other way round: the stages take plain
arguments, not the build's options.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .features import EmbedItem, embed_items
from .images import ResizePolicy
from .rows import RowInputs, RowRule, rows_top_k_block
from .similarity import Metric, finish_scores

if TYPE_CHECKING:
    from distributed import Client

CHUNK_BATCHES = 8  # model batches per Dask task
_EXTRACTORS: dict[tuple[str, str, int], Any] = {}
_LOCK = threading.Lock()


class SchedulerError(RuntimeError):
    """The Dask scheduler given with --scheduler cannot be reached."""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client of `scheduler`, or of a LocalCluster on 127.0.0.1 that is closed afterwards."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as e:
            raise SchedulerError(f"cannot reach Dask scheduler {scheduler} ({e})") from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers or 2,
            threads_per_worker=1,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            processes=True,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _worker_extractor(model: str, weights: str, seed: int) -> Any:
    """The extractor of this worker process, loaded on first use and then kept."""
    from .models import load_extractor

    key = (model, weights, seed)
    with _LOCK:
        if key not in _EXTRACTORS:
            _EXTRACTORS[key] = load_extractor(model, weights, seed)
        return _EXTRACTORS[key]


def embed_chunk(
    chunk: list[tuple[str, bytes]],
    model: str,
    weights: str,
    seed: int,
    size: tuple[int, int],
    policy: ResizePolicy,
    batch: int,
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, str]]:
    """Task: embed (sha256, image bytes) pairs on a worker; (shas, features, colours,
    errors)."""
    extractor = _worker_extractor(model, weights, seed)
    items = [EmbedItem(sha, data) for sha, data in chunk]
    out, colours, errors = embed_items(items, extractor.embed, size, policy, batch)
    shas = [it.sha256 for it in items if it.sha256 in out]
    feats = np.stack([out[s] for s in shas]) if shas else np.zeros((0, 0), np.float32)
    cols = np.stack([colours[s] for s in shas]) if shas else np.zeros((0, 0), np.float32)
    return shas, feats, cols, errors


def embed_on_dask(
    client: Client,
    items: Sequence[EmbedItem],
    model: str,
    weights: str,
    seed: int,
    size: tuple[int, int],
    policy: ResizePolicy,
    batch: int,
    on_shard: Callable[[list[str], np.ndarray, np.ndarray], None] | None = None,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embed images on the cluster, a bounded number of chunks in flight at a time.

    Each worker loads `load_extractor(model, weights, seed)` once; chunks are whole
    batches of `batch` images, so every model call sees the batch a local run would.
    """
    from distributed import as_completed
    from tqdm import tqdm

    chunk_len = batch * CHUNK_BATCHES
    chunks = [items[i : i + chunk_len] for i in range(0, len(items), chunk_len)]
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    in_flight = 2 * n_workers

    def submit(chunk: Sequence[EmbedItem]) -> Any:
        payload = [(it.sha256, Path(it.source).read_bytes()) for it in chunk]
        return client.submit(
            embed_chunk, payload, model, weights, seed, size, policy, batch, pure=False
        )

    out: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    # the first `in_flight` chunks go now, each later one when a running chunk finishes
    # (slicing, not zip(iterator, range): zip would draw one chunk more than it submits)
    futures = as_completed([submit(c) for c in chunks[:in_flight]])
    pending = iter(chunks[in_flight:])
    bar = tqdm(total=len(items), desc="embedding (dask)", unit="img", disable=not progress)
    for fut in futures:
        shas, feats, cols, errs = fut.result()
        errors.update(errs)
        for sha, row in zip(shas, feats, strict=True):
            out[sha] = row
        if on_shard and shas:
            on_shard(shas, feats, cols)
        bar.update(len(shas) + len(errs))
        nxt = next(pending, None)
        if nxt is not None:
            futures.add(submit(nxt))
    bar.close()
    return out, errors


def rows_task(
    rules: list[RowRule],
    inputs: RowInputs,
    start: int,
    stop: int,
    k: int,
    metric: Metric,
    margin: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Task: every row's top-k of query rows [start, stop), as the local engine does it."""
    return rows_top_k_block(
        rules, inputs.shape, inputs.sq_norms, inputs.colour, start, stop, k, metric,
        inputs.group_codes, inputs.dup_codes, inputs.prefer_codes, margin,
    )


def rows_on_dask(
    client: Client,
    rules: list[RowRule],
    inputs: RowInputs,
    k: int,
    metric: Metric,
    margin: float,
    block: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact top-k of every row with one task per block of queries; the prepared inputs
    are broadcast to the workers once."""
    n = len(inputs.shape)
    inputs_f = client.scatter(inputs, broadcast=True)
    starts = list(range(0, n, block))
    futures = [
        client.submit(rows_task, rules, inputs_f, s, min(s + block, n), k, metric, margin,
                      pure=False)
        for s in starts
    ]
    out = [
        (np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan, dtype=np.float32))
        for _ in rules
    ]
    for s, found in zip(starts, client.gather(futures), strict=True):
        for (idx, scores), (bi, bs) in zip(out, found, strict=True):
            idx[s : s + len(bi)], scores[s : s + len(bs)] = bi, bs
    return [(idx, finish_scores(scores, metric)) for idx, scores in out]
