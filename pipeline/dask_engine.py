"""Running the build's two heavy stages on Dask (a LocalCluster or an existing scheduler).

The stages are the same functions the local engine calls, cut at the same places, so
the results are identical: embedding runs in chunks whose size is a multiple of the
batch size (so every model call sees the same batch as locally), and top-k runs the same
row blocks. Image bytes travel with the tasks, so workers need no shared filesystem;
the model is loaded once per worker process and kept.

Workers get the model from the client: for a Keras model file, the client asks every
worker whether the file at its path has the client's sha256 (`model_status`) and sends
the bytes once to those that lack it (`ensure_model_on_workers`; kept in the worker's
local directory). Every task carries the client's model identity, and a worker whose
model differs (other ImageNet weights in its Keras cache, a file it never received)
fails with a `ModelError` naming the worker and the path.

`pipeline.build` calls this module, never the other way round: the stages take plain
arguments, not the build's options.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .features import EmbedItem, embed_items
from .images import ResizePolicy
from .models import (
    BUILTIN_MODELS,
    ModelError,
    check_identity,
    file_sha256,
    is_model_file,
    unknown_model_error,
)
from .rows import (
    RowInputs,
    RowRule,
    finish_rows,
    merge_scan,
    pair_tiles,
    running_best,
    scan_block_pairs,
)
from .similarity import Metric, finish_scores

if TYPE_CHECKING:
    from distributed import Client

CHUNK_BATCHES = 8  # model batches per Dask task
RECEIVED_MODELS = "lookalike-models"  # folder in a worker's local directory
_EXTRACTORS: dict[tuple[str, str, int, str], Any] = {}
_LOCK = threading.Lock()
_CLOSING: list[threading.Thread] = []  # LocalClusters being stopped in the background


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
    cluster = LocalCluster(
        n_workers=workers or 2,
        threads_per_worker=1,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        processes=True,
        # the scheduler serves HTTP (health, metrics) even without a dashboard, by
        # default on port 8787: an ephemeral port on 127.0.0.1 instead
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
    )
    try:
        with Client(cluster) as client:
            try:
                yield client
            finally:
                with contextlib.suppress(Exception):  # a worker that is gone needs nothing
                    client.run(exit_without_teardown)
    finally:
        # stopping the worker processes takes 1-2 s: the build goes on meanwhile (its map
        # and files) and calls wait_closed() before it returns
        closer = threading.Thread(target=cluster.close, name="dask-cluster-close")
        closer.start()
        _CLOSING.append(closer)


def exit_without_teardown(dask_worker: Any = None) -> None:
    """On a worker process of our own LocalCluster (through `client.run` as it stops): end
    the process with `os._exit` as soon as Python starts exiting, after the worker has
    closed. Tearing down TensorFlow's modules costs about 1 CPU-second per process, which
    on a small machine is taken from the build's next stage; nothing of the worker is left
    to clean up by then. Registered last, so it runs before the other exit handlers."""
    import atexit

    atexit.register(os._exit, 0)


def wait_closed() -> None:
    """Wait until every LocalCluster `dask_client` opened has stopped its processes."""
    while _CLOSING:
        _CLOSING.pop().join()


def _this_worker(dask_worker: Any = None) -> Any:
    """The worker this runs on: `client.run` passes it, a task asks `get_worker`; None
    outside Dask (a test calling a task function directly)."""
    if dask_worker is not None:
        return dask_worker
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def _worker_name(dask_worker: Any = None) -> str:
    worker = _this_worker(dask_worker)
    return worker.address if worker is not None else "this process"


def _received_path(sha256: str, name: str, dask_worker: Any = None) -> Path | None:
    worker = _this_worker(dask_worker)
    if worker is None:
        return None
    # the file keeps its name: the model identity's name is `file:<name>`
    return Path(worker.local_directory) / RECEIVED_MODELS / sha256[:16] / name


def model_status(path: str, sha256: str, dask_worker: Any = None) -> str:
    """On a worker: `ok` when the file at `path` (or one received before) has `sha256`,
    else `missing` or `differs`."""
    received = _received_path(sha256, Path(path).name, dask_worker)
    if received is not None and received.is_file():
        return "ok"
    if not os.path.isfile(path):
        return "missing"
    return "ok" if file_sha256(path) == sha256 else "differs"


def receive_model(data: bytes, sha256: str, name: str, dask_worker: Any = None) -> str:
    """On a worker (through `client.run`): keep the client's model file bytes, checked and
    written atomically."""
    import hashlib

    where = _worker_name(dask_worker)
    dest = _received_path(sha256, name, dask_worker)
    if dest is None or hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{name}: {where} could not keep the client's model bytes")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return str(dest)


def ensure_model_on_workers(
    client: Client, path: str | Path, upload: bool = True, sha256: str | None = None
) -> dict:
    """Check the model file on every worker by sha256 (the file's, or `sha256` when the
    caller has hashed it) and send its bytes once to those whose copy is missing or
    differs; {worker: 'ok' | 'received'}.

    With `upload=False` a worker without the right file is a ModelError naming it.
    """
    path = str(path)
    sha = sha256 or file_sha256(path)
    status = client.run(model_status, path, sha)
    lacking = sorted(w for w, s in status.items() if s != "ok")
    if lacking and not upload:
        listed = ", ".join(f"{w} ({status[w]})" for w in lacking)
        raise ModelError(
            f"model file {path} (sha256 {sha[:12]}) is not on every Dask worker: {listed}"
        )
    if lacking:
        client.run(receive_model, Path(path).read_bytes(), sha, Path(path).name,
                   workers=lacking)
    return {w: "received" if w in lacking else "ok" for w in status}


def _worker_model_path(model: str, sha256: str | None) -> str:
    """The model file this worker loads: its own copy at `model` when its sha256 is the
    client's `sha256`, else the copy the client sent; a ModelError naming the worker
    otherwise (`sha256=None`: a built-in model name, loaded as given)."""
    if not sha256:
        return model
    received = _received_path(sha256, Path(model).name)
    if received is not None and received.is_file():
        return str(received)
    state = model_status(model, sha256)
    if state != "ok":
        raise ModelError(
            f"model file {model} {state} on Dask worker {_worker_name()} (the client's has "
            f"sha256 {sha256[:12]}); let the build send it, or copy it to the same path"
        )
    return model


def _file_sha256(expected: dict[str, Any] | None) -> str | None:
    """The client's sha256 of a Keras model file, from its identity (None: built-in)."""
    if expected and expected.get("name", "").startswith("file:"):
        return expected.get("weights_sha256") or None
    return None


def _worker_extractor(
    model: str, weights: str, seed: int, precision: str = "float32",
    expected: dict[str, Any] | None = None, sha256: str | None = None,
) -> Any:
    """The extractor of this worker process, loaded on first use and then kept; checked
    against the client's identity `expected` when given (`sha256`: the client's model
    file hash when no identity is known yet)."""
    from .models import load_extractor

    path = _worker_model_path(model, _file_sha256(expected) or sha256)
    key = (path, weights, seed, precision)
    with _LOCK:
        if key not in _EXTRACTORS:
            _EXTRACTORS[key] = load_extractor(path, weights, seed, precision)
        extractor = _EXTRACTORS[key]
    if expected is not None:
        try:
            check_identity(expected, extractor.identity)
        except ModelError as e:
            raise ModelError(f"Dask worker {_worker_name()}, {model}: {e}") from None
    return extractor


def worker_identity(
    model: str, weights: str, seed: int, precision: str, sha256: str | None
) -> tuple[str, dict[str, Any]]:
    """Task: load this worker's extractor (kept for the chunks that follow); (worker,
    identity)."""
    return _worker_name(), dict(
        _worker_extractor(model, weights, seed, precision, sha256=sha256).identity)


class WarmWorkers:
    """Every worker loading the model while the client goes on (reading and hashing the
    catalog); `extractor()` then gives the client the workers' model identity, so the
    client itself never loads TensorFlow or the model."""

    def __init__(
        self, client: Client, model: str, weights: str, seed: int, precision: str,
        upload: bool = True,
    ) -> None:
        self.model = model
        self.sha256: str | None = None
        if is_model_file(model):
            if not os.path.isfile(model):
                raise ModelError(f"{model}: model file not found")
            self.sha256 = file_sha256(model)
            ensure_model_on_workers(client, model, upload, self.sha256)
        elif model not in BUILTIN_MODELS:
            raise unknown_model_error(model)
        workers = sorted(client.scheduler_info().get("workers", {})) or [None]
        self.futures = [
            client.submit(worker_identity, model, weights, seed, precision, self.sha256,
                          workers=None if w is None else [w], allow_other_workers=True,
                          pure=False)
            for w in workers
        ]

    def extractor(self) -> Any:
        """A FeatureExtractor without a model (the workers hold it): identity and input
        size, for the cache key and meta.json. Workers whose models differ: ModelError."""
        from .models import FeatureExtractor

        found = [f.result() for f in self.futures]
        first_worker, identity = found[0]
        for worker, other in found[1:]:
            try:
                check_identity(identity, other)
            except ModelError as e:
                raise ModelError(
                    f"Dask workers {first_worker} and {worker} load different models for "
                    f"{self.model}: {e}") from None
        if self.sha256:
            # the identity a local build records: the client's path, not a worker's copy
            identity["path"] = str(Path(self.model))
        return FeatureExtractor(identity=identity, model=None)


def embed_chunk(
    chunk: list[tuple[str, bytes]],
    model: str,
    weights: str,
    seed: int,
    size: tuple[int, int],
    policy: ResizePolicy,
    batch: int,
    precision: str = "float32",
    expected: dict[str, Any] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, str]]:
    """Task: embed (sha256, image bytes) pairs on a worker; (shas, features, colours,
    errors)."""
    extractor = _worker_extractor(model, weights, seed, precision, expected)
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
    precision: str = "float32",
    expected: dict[str, Any] | None = None,
    upload: bool = True,
    checked: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embed images on the cluster, a bounded number of chunks in flight at a time.

    Each worker loads `load_extractor(model, weights, seed, precision)` once and checks it
    against `expected` (the client's extractor identity); a model file is first checked by
    sha256 on every worker and sent where it is missing or differs (`upload=False`: a
    ModelError instead; `checked`: `WarmWorkers` did that already). Chunks are whole
    batches of `batch` images, so every model call sees the batch a local run would.
    """
    from distributed import as_completed
    from tqdm import tqdm

    if _file_sha256(expected) and not checked:
        ensure_model_on_workers(client, model, upload)
    chunk_len = batch * CHUNK_BATCHES
    chunks = [items[i : i + chunk_len] for i in range(0, len(items), chunk_len)]
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    in_flight = 2 * n_workers

    def submit(chunk: Sequence[EmbedItem]) -> Any:
        payload = [(it.sha256, Path(it.source).read_bytes()) for it in chunk]
        return client.submit(
            embed_chunk, payload, model, weights, seed, size, policy, batch, precision,
            expected, pure=False,
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


def rows_on_dask(
    client: Client,
    rules: list[RowRule],
    inputs: RowInputs,
    k: int,
    metric: Metric,
    margin: float,
    block: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact top-k of every row, as `rows_top_k` computes it: tasks scan tiles of block
    pairs (each pair once, `scan_block_pairs`), the client merges each row's best block
    scores, and one task per block of rows ranks its candidates by exact scores
    (`finish_rows`). The prepared inputs are broadcast to the workers once."""
    from distributed import as_completed

    n = len(inputs.shape)
    out = [
        (np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan, dtype=np.float32))
        for _ in rules
    ]
    if min(k, n - 1) < 1:
        return [(idx, finish_scores(scores, metric)) for idx, scores in out]
    inputs_f = client.scatter(inputs, broadcast=True)
    n_workers = len(client.scheduler_info().get("workers", {}))
    scans = [
        client.submit(scan_block_pairs, rules, inputs_f, tile, k, metric, margin, block,
                      pure=False)
        for tile in pair_tiles(n, block, n_workers)
    ]
    merged = running_best(rules, k, n)
    for fut in as_completed(scans):
        merge_scan(merged, fut.result())
    starts = list(range(0, n, block))
    finishes = [
        client.submit(finish_rows, rules, inputs_f, s, [best.blocks[s] for best in merged],
                      k, metric, margin, pure=False)
        for s in starts
    ]
    for s, found in zip(starts, client.gather(finishes), strict=True):
        for (idx, scores), (bi, bs) in zip(out, found, strict=True):
            idx[s : s + len(bi)], scores[s : s + len(bs)] = bi, bs
    return [(idx, finish_scores(scores, metric)) for idx, scores in out]
