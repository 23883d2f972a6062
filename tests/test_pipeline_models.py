"""Real Keras models: VGG16 fc2 with random weights, Keras files, the shared model's known answer.

These load TensorFlow, so they are marked slow; the known-answer test needs ../shared.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluate import evaluate
from pipeline.models import ModelError, check_identity, load_extractor
from pipeline.precomputed import read_precomputed
from pipeline.precomputed import score_percentile as percentile
from tests.pipeline_helpers import FASHION, REPO, SHARED_MODEL, make_catalog, needs_shared

pytestmark = pytest.mark.slow


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True, text=True, cwd=REPO, env=full_env, timeout=900,
    )


def test_readme_build_command_with_vgg16_random_weights(tmp_path: Path):
    """The README's build command (VGG16 fc2, the default) end to end, with random weights."""
    catalog = make_catalog(tmp_path / "catalog", n_variants=1)
    out = tmp_path / "precomputed" / "shop"
    r = run_cli("build", str(catalog), "--out", str(out), "--weights", "random", "--k", "4",
                "--cache-dir", str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(f"-> {out}")
    assert "12 products, 12 embedded now, 0 from cache, 0 skipped" in r.stdout
    meta = read_precomputed(out).meta
    assert meta["model"]["name"] == "vgg16" and meta["model"]["layer"] == "fc2"
    assert meta["model"]["dim"] == 4096 and meta["model"]["weights"] == "random"
    assert meta["model"]["input_size"] == [224, 224] and len(meta["model"]["weights_sha256"]) == 64
    assert np.load(out / "embeddings.npy").shape == (12, 4096)
    # a second run embeds nothing: features come from the cache
    r2 = run_cli("build", str(catalog), "--out", str(out), "--weights", "random", "--k", "4",
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress")
    assert "0 embedded now, 12 from cache" in r2.stdout, r2.stderr


def test_missing_imagenet_weights_name_the_file_and_folder(tmp_path: Path, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")  # what Keras raises offline

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(ModelError) as err:
        load_extractor("vgg16", "imagenet")
    msg = str(err.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in msg
    assert str(tmp_path / "keras" / "models") in msg


def test_keras_file_with_a_feature_map_is_average_pooled(tmp_path: Path):
    import keras

    inp = keras.Input((32, 48, 3))
    x = keras.layers.Conv2D(5, 3, padding="same")(keras.layers.Rescaling(1 / 255)(inp))
    path = tmp_path / "tiny.keras"
    keras.Model(inp, x).save(path)
    ex = load_extractor(str(path))
    assert ex.identity["input_size"] == [48, 32] and ex.identity["dim"] == 5
    assert ex.identity["layer"].endswith("+avg")
    assert ex.embed(np.zeros((3, 32, 48, 3), np.uint8)).shape == (3, 5)


def test_bad_model_arguments(tmp_path: Path):
    with pytest.raises(ModelError, match="unknown model 'vgg19'"):
        load_extractor("vgg19")
    with pytest.raises(ModelError, match="model file not found"):
        load_extractor(str(tmp_path / "nope.keras"))
    (tmp_path / "junk.keras").write_text("junk")
    with pytest.raises(ModelError, match="cannot load Keras model"):
        load_extractor(str(tmp_path / "junk.keras"))
    r = run_cli("build", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "vgg19")
    assert r.returncode == 1 and r.stderr.strip().startswith("error:")


@needs_shared
def test_identity_mismatch_is_refused():
    ex = load_extractor(str(SHARED_MODEL))
    check_identity(ex.identity, dict(ex.identity))
    with pytest.raises(ModelError, match="model mismatch: catalog was built with weights_sha256"):
        check_identity({**ex.identity, "weights_sha256": "f" * 64}, ex.identity)


@needs_shared
def test_known_answer_on_fashion_small_2k(tmp_path: Path):
    """DESIGN.md: precision@5 0.674 and vote accuracy 0.757 (+-0.01) with the shared model,
    reproduced by the plain cosine build (no whitening, no colour)."""
    out = tmp_path / "fashion"
    r = run_cli(
        "build", str(FASHION / "images"), "--metadata", str(FASHION / "styles.csv"),
        "--title-column", "productDisplayName", "--model", str(SHARED_MODEL),
        "--out", str(out), "--k", "10", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
        "--no-whiten", "--colour-weight", "0", "--rows", "similar", "--text-weight", "0",
        "--department", "none",
    )
    assert r.returncode == 0, r.stderr
    assert "2000 products, 1997 embedded now" in r.stdout  # 3 byte-identical pairs
    ev = evaluate(out, "articleType", k=5)
    assert ev.n_queries == 1900
    assert ev.precision_at_k == pytest.approx(0.674, abs=0.01)
    assert ev.vote_accuracy == pytest.approx(0.757, abs=0.01)
    assert evaluate(out, "baseColour", k=5).precision_at_k == pytest.approx(0.286, abs=0.01)
    r = run_cli("evaluate", str(out), "--label", "articleType", "--k", "5", "--json")
    data = json.loads(r.stdout)
    assert data["precision_at_k"] == pytest.approx(ev.precision_at_k)
    assert data["per_label"][0]["precision_at_k"] <= data["per_label"][-1]["precision_at_k"]
    r = run_cli("evaluate", str(out), "--label", "colour")
    assert r.returncode == 1 and "no such attribute" in r.stderr
    r = run_cli("evaluate", str(out), "--label", "articleType", "--k", "11")
    assert r.returncode == 1 and "holds only 10 neighbours" in r.stderr
    # the byte-identical pairs never recommend each other
    pre = read_precomputed(out)
    for a, b in (("31097", "34037"), ("41986", "40139"), ("8723", "9612")):
        assert b not in [n for n, _ in pre.neighbours[a]]

    # the default build (issue 10): whitening, the colour-aware rows, calibrated scores
    rows = tmp_path / "rows"
    r = run_cli(
        "build", str(FASHION / "images"), "--metadata", str(FASHION / "styles.csv"),
        "--title-column", "productDisplayName", "--model", str(SHARED_MODEL),
        "--out", str(rows), "--k", "10", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert "0 embedded now, 1997 from cache" in r.stdout  # same cache key as above
    # issue 17's targets with the words signal and departments (tolerance 0.01)
    r = run_cli("evaluate", str(rows), "--label", "articleType", "--label", "baseColour",
                "--json")
    report = json.loads(r.stdout)["rows"]
    sim, oth = report["similar"], report["other_colours"]
    assert sim["labels"]["articleType"]["precision_at_k"] >= 0.80 - 0.01
    assert sim["labels"]["baseColour"]["precision_at_k"] >= 0.42 - 0.01
    assert sim["other_department"] <= 0.05 + 0.01  # gender: Unisex goes with either
    assert sim["shape_likeness"]["kept"] >= 0.85 - 0.01
    assert oth["labels"]["articleType"]["precision_at_k"] >= 0.72 - 0.01
    assert oth["other_colour"] >= 0.92 - 0.01
    assert oth["shared_with_first"] == 0
    other = read_precomputed(rows)
    assert other.meta["department"]["column"] == "gender"
    assert other.meta["text"]["colour_words"]  # black, blue, ... found without a list
    assert {"black", "blue", "red"} <= set(other.meta["text"]["colour_words"])
    # calibration: articleType agreement rises from the lowest to the highest score decile
    types = {p["id"]: p["attrs"].get("articleType") for p in other.products}
    quantiles = other.meta["rows"][0]["score_quantiles"]
    bands: list[list[bool]] = [[] for _ in range(10)]
    for q, ns in other.rows["similar"].items():
        for n, score in ns:
            bands[min(int(percentile(score, quantiles) // 10), 9)].append(types[q] == types[n])
    shares = [sum(b) / len(b) for b in bands]
    assert shares[-1] >= shares[0] + 0.20 and shares[-1] == max(shares)
    assert all(b >= a - 0.02 for a, b in itertools.pairwise(shares)), shares
    assert other.meta["whitening"]["dims"] == 256 and (rows / "whitening.npz").is_file()


def test_resnet50_is_average_pooled_2048d():
    ex = load_extractor("resnet50", "random")
    assert ex.identity["layer"] == "avg_pool" and ex.identity["dim"] == 2048
    assert ex.identity["input_size"] == [224, 224]
    feats = ex.embed(np.full((2, 224, 224, 3), 200, np.uint8))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
