"""The Dask engine on a real LocalCluster (127.0.0.1, ephemeral ports) gives the local results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import BuildOptions, build
from pipeline.rows import OTHER_COLOURS, SIMILAR, RowInputs, RowRule, plan_rows, rows_top_k
from pipeline.similarity import l2_normalise, top_k_neighbours
from tests.pipeline_helpers import make_catalog

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", scheduler_port=0,
        dashboard_address=None, processes=True,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
    ) as c:
        yield c


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(24, 3, activation="relu")(x)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    keras.Model(inp, x).save(path)
    return path


def test_rows_on_dask_equal_local(cluster):
    from distributed import Client

    from pipeline.dask_engine import rows_on_dask

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    colour = np.abs(rng.normal(size=(500, 8))).astype(np.float32)
    colour /= np.linalg.norm(colour, axis=1, keepdims=True)
    groups = rng.choice(["a", "b"], size=500)
    prefer = rng.choice(["m", "w", "u"], size=500)
    dups = [str(i // 2) if i < 20 else str(i) for i in range(500)]
    with Client(cluster) as client:
        for metric in ("cosine", "euclidean"):
            shape_only = [RowRule(SIMILAR, "Looks like this", 1.0, 0.0)]
            inputs = RowInputs.prepare(x, None, metric, groups, dups)
            (got,) = rows_on_dask(client, shape_only, inputs, 7, metric, 0.0, block=64)
            want = top_k_neighbours(x, 7, metric, groups, dups, block=64)
            assert np.array_equal(got[0], want[0])
            assert np.array_equal(got[1], want[1], equal_nan=True)
        rules = plan_rows((SIMILAR, OTHER_COLOURS), l2_normalise(x), colour, 0.4, 0.8)
        inputs = RowInputs.prepare(x, colour, "cosine", None, dups, prefer)
        got = rows_on_dask(client, rules, inputs, 7, "cosine", 0.05, block=64)
        want = rows_top_k(rules, inputs, 7, "cosine", 0.05, block=64)
        for (gi, gs), (wi, ws) in zip(got, want, strict=True):
            assert np.array_equal(gi, wi) and np.array_equal(gs, ws, equal_nan=True)


@pytest.mark.parametrize("n,block,workers", [(1, 64, 2), (64, 64, 2), (500, 64, 2),
                                             (2000, 64, 3), (130, 16, 40), (1000, 1024, 1)])
def test_top_k_tiles_hold_every_block_pair_once(n, block, workers):
    from pipeline.rows import TILES_PER_PART, block_pairs, pair_tiles

    tiles = pair_tiles(n, block, workers)
    flat = [pair for tile in tiles for pair in tile]
    assert sorted(flat) == block_pairs(n, block)  # all of them, each once
    assert all(tiles)
    assert len(tiles) >= min(TILES_PER_PART * workers, len(flat))


def test_rows_on_dask_scan_near_ties_whole(cluster):
    """30 copies of one product outnumber the k + 8 pairs kept per row, across tiles of
    block pairs: the merged rows are scanned whole, as locally, with the same bytes."""
    from distributed import Client

    from pipeline.dask_engine import rows_on_dask

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    colour = np.abs(rng.normal(size=(300, 6))).astype(np.float32)
    x[100:130], colour[100:130] = x[99], colour[99]
    colour /= np.linalg.norm(colour, axis=1, keepdims=True)
    rules = plan_rows((SIMILAR, OTHER_COLOURS), l2_normalise(x), colour, 0.4, 0.6)
    inputs = RowInputs.prepare(x, colour, "cosine", None, None, rng.choice(["m", "w"], 300))
    want = rows_top_k(rules, inputs, 5, "cosine", 0.05, block=16)
    with Client(cluster) as client:
        got = rows_on_dask(client, rules, inputs, 5, "cosine", 0.05, block=16)
    for (gi, gs), (wi, ws) in zip(got, want, strict=True):
        assert np.array_equal(gi, wi) and gs.tobytes() == ws.tobytes()


def meta_model(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())["model"]


def test_dask_build_is_identical_to_local(cluster, tiny_model: Path, tmp_path: Path, monkeypatch):
    catalog = make_catalog(tmp_path / "catalog", n_variants=3)  # 36 products
    (catalog / "images" / "red-disc-2.jpg").write_bytes(b"broken")
    # batch 1: chunks of 8 images, so 35 images make 5 chunks, more than the 4 kept in
    # flight on 2 workers (the case that once lost a chunk)
    common = dict(catalog=catalog, model=str(tiny_model), k=5, batch=1, progress=False)
    local = build(BuildOptions(out=tmp_path / "local", cache_dir=tmp_path / "c1", **common))

    def not_here(*args, **kwargs):
        raise AssertionError("a Dask build loads the model on the workers only")

    monkeypatch.setattr("pipeline.build.load_extractor", not_here)
    dask = build(
        BuildOptions(
            out=tmp_path / "dask", cache_dir=tmp_path / "c2", engine="dask",
            scheduler=cluster.scheduler_address, **common,
        )
    )
    monkeypatch.undo()
    assert dask.embedded_now == local.embedded_now == 35
    # the workers' identity, with the client's path: what a local build records
    assert meta_model(tmp_path / "dask") == meta_model(tmp_path / "local")
    assert [s["id"] for s in dask.skipped] == ["red-disc-2"]
    for name in ("products.json", "neighbours.json", "neighbours-other_colours.json",
                 "colours.npy", "embeddings.npy"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    # the Dask run filled its cache like a local run does
    again = build(BuildOptions(out=tmp_path / "again", cache_dir=tmp_path / "c2", **common))
    assert again.embedded_now == 0 and again.from_cache == 35


def test_unreachable_scheduler_is_a_one_line_error(tiny_model: Path, tmp_path: Path, capsys):
    from pipeline.cli import main

    catalog = make_catalog(tmp_path / "catalog", n_variants=1)
    code = main([
        "build", str(catalog), "--out", str(tmp_path / "o"), "--engine", "dask",
        "--scheduler", "tcp://127.0.0.1:1", "--model", str(tiny_model),
        "--cache-dir", str(tmp_path / "cache"), "--no-progress",
    ])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("error: cannot reach Dask scheduler tcp://127.0.0.1:1")
    assert "\n" not in err


def test_workers_get_the_model_file_from_the_client(
    cluster, tiny_model: Path, tmp_path: Path, monkeypatch
):
    """A relative --model path the workers cannot see (their working folder is another)
    stands for a worker machine without the file: the build sends the bytes once."""
    from distributed import Client

    from pipeline.dask_engine import ensure_model_on_workers, model_status
    from pipeline.models import ModelError, file_sha256

    catalog = make_catalog(tmp_path / "catalog", n_variants=1)
    here = tmp_path / "client"
    here.mkdir()
    (here / "tiny.keras").write_bytes(tiny_model.read_bytes())
    monkeypatch.chdir(here)  # the workers keep the folder they were started in
    with Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        status = client.run(model_status, "tiny.keras", file_sha256("tiny.keras"))
        assert status == {w: "missing" for w in workers}
        with pytest.raises(ModelError) as e:
            ensure_model_on_workers(client, "tiny.keras", upload=False)
        assert "model file tiny.keras" in str(e.value)
        assert all(f"{w} (missing)" in str(e.value) for w in workers)
        assert client.run(model_status, str(tiny_model), "0" * 64) == {
            w: "differs" for w in workers}
    common = dict(catalog=catalog, model="tiny.keras", k=3, batch=4, progress=False)
    local = build(BuildOptions(out=tmp_path / "local", cache_dir=tmp_path / "c1", **common))
    dask = build(BuildOptions(out=tmp_path / "dask", cache_dir=tmp_path / "c2", engine="dask",
                              scheduler=cluster.scheduler_address, **common))
    assert dask.embedded_now == local.embedded_now == 12
    assert meta_model(tmp_path / "dask") == meta_model(tmp_path / "local")
    assert meta_model(tmp_path / "dask")["path"] == "tiny.keras"  # not a worker's copy
    for name in ("products.json", "neighbours.json", "embeddings.npy"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    with Client(cluster) as client:  # kept: a second build sends nothing
        assert ensure_model_on_workers(client, "tiny.keras") == {w: "ok" for w in workers}


def test_a_worker_with_another_model_is_a_clear_error(cluster, tiny_model: Path, tmp_path: Path):
    from distributed import Client

    from pipeline.dask_engine import embed_on_dask
    from pipeline.features import EmbedItem
    from pipeline.models import ModelError, load_extractor

    catalog = make_catalog(tmp_path / "catalog", n_variants=1)
    expected = dict(load_extractor(str(tiny_model)).identity, weights_sha256="0" * 64)
    items = [EmbedItem(p.name, p) for p in sorted((catalog / "images").iterdir())]
    with Client(cluster) as client, pytest.raises(ModelError) as e:
        embed_on_dask(client, items, str(tiny_model), "imagenet", 0, (32, 32), "pad", 4,
                      progress=False, expected=expected)
    assert f"model file {tiny_model} differs on Dask worker tcp://127.0.0.1:" in str(e.value)


def test_workers_with_different_models_are_a_clear_error(tiny_model: Path):
    """Two workers whose loaded models differ (say, other ImageNet weights in their Keras
    caches) stop the build before any image is sent, naming both."""
    from pipeline.dask_engine import WarmWorkers
    from pipeline.models import ModelError, load_extractor

    identity = load_extractor(str(tiny_model)).identity

    class Done:  # a finished future
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    warm = WarmWorkers.__new__(WarmWorkers)
    warm.model, warm.sha256 = str(tiny_model), identity["weights_sha256"]
    warm.futures = [Done(("tcp://127.0.0.1:1", identity)),
                    Done(("tcp://127.0.0.1:2", dict(identity, weights_sha256="0" * 64)))]
    with pytest.raises(ModelError) as e:
        warm.extractor()
    assert "Dask workers tcp://127.0.0.1:1 and tcp://127.0.0.1:2 load different models" in str(
        e.value)
    warm.futures = warm.futures[:1]
    assert warm.extractor().identity == identity


def test_a_dask_build_never_loads_tensorflow_in_the_client(
    cluster, tiny_model: Path, tmp_path: Path
):
    """The workers load the model; the client only hashes, ranks, maps (UMAP: 108
    products) and writes, so it never imports TensorFlow (2-3 s and a few hundred MB)."""
    import subprocess
    import sys

    catalog = make_catalog(tmp_path / "catalog", n_variants=9)  # 108 products: UMAP
    script = (
        "import sys\n"
        "from pipeline.cli import main\n"
        f"code = main(['build', {str(catalog)!r}, '--out', {str(tmp_path / 'out')!r},"
        f" '--model', {str(tiny_model)!r}, '--cache-dir', {str(tmp_path / 'cache')!r},"
        f" '--engine', 'dask', '--scheduler', {cluster.scheduler_address!r},"
        " '--no-progress'])\n"
        "assert code == 0, code\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False False"
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["projection"] == "umap" and meta["n_products"] == 108


@pytest.mark.parametrize("model,weights,message", [
    ("vgg17", "imagenet", "error: unknown model 'vgg17'"),
    ("missing/tiny.keras", "imagenet", "error: missing/tiny.keras: model file not found"),
    ("vgg16", "no-such-weights.h5", "error: --weights no-such-weights.h5: not 'imagenet'"),
])
def test_a_bad_model_on_dask_is_a_one_line_error(
    cluster, tmp_path: Path, capsys, model, weights, message
):
    """Found on the client (a name, a file) or raised on a worker while it loads the model
    (the weights): one line either way, no traceback."""
    from pipeline.cli import main

    catalog = make_catalog(tmp_path / "catalog", n_variants=1)
    code = main([
        "build", str(catalog), "--out", str(tmp_path / "o"), "--engine", "dask",
        "--scheduler", cluster.scheduler_address, "--model", model, "--weights", weights,
        "--cache-dir", str(tmp_path / "cache"), "--no-progress",
    ])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith(message) and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_a_build_on_its_own_local_cluster_leaves_no_process(tiny_model: Path, tmp_path: Path):
    """--workers 2 without --scheduler: the build starts a LocalCluster, gives the local
    engine's bytes, and its worker processes are gone when build() returns (they skip
    TensorFlow's teardown as they stop, `exit_without_teardown`)."""
    import psutil

    catalog = make_catalog(tmp_path / "catalog", n_variants=2)
    common = dict(catalog=catalog, model=str(tiny_model), k=4, batch=4, progress=False)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    local = build(BuildOptions(out=tmp_path / "local", cache_dir=tmp_path / "c1", **common))
    dask = build(BuildOptions(out=tmp_path / "dask", cache_dir=tmp_path / "c2", engine="dask",
                              workers=2, **common))
    assert dask.embedded_now == local.embedded_now == 24
    for name in ("products.json", "neighbours.json", "embeddings.npy", "colours.npy"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())]  # multiprocessing's own
    assert not left, [p.cmdline() for p in left]
