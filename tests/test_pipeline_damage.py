"""A build that survives damage: killed builds' leftovers, flushed outputs, and a feature
cache keyed by everything that changes a feature (resize policy, precision)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pipeline.writer as writer
from pipeline.build import BuildOptions, build
from pipeline.models import load_extractor, resolve_precision
from tests.pipeline_helpers import REPO, colour_extractor, make_catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return make_catalog(tmp_path / "catalog")


def run(catalog: Path, out: Path, cache: Path, extractor=None, **kw):
    opts = BuildOptions(catalog=catalog, out=out, cache_dir=cache, progress=False, **kw)
    return build(opts, extractor=extractor or colour_extractor())


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_builds_temporary_folder_is_removed_at_the_next_start(
    catalog: Path, tmp_path: Path, capsys
):
    out = tmp_path / "pre"
    # a writer that hangs while writing thumbnails, then is killed with SIGKILL
    script = textwrap.dedent(f"""
        import time, numpy as np
        from pipeline.writer import precomputed_meta, write_precomputed
        meta = precomputed_meta(n_products=1, k=1, metric="cosine", group_by=None,
                                model={{}}, similarity_baseline=0.0, source={{}})
        def hang(p):
            time.sleep(60)
        write_precomputed({str(out)!r}, meta, [{{"id": "a", "sha256": "1"}}], {{"a": []}},
                          np.ones((1, 2)), hang, [])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    leftover = tmp_path / f".pre.tmp-{proc.pid}"
    deadline = time.monotonic() + 60
    while not (leftover / "thumbs").is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (leftover / "thumbs").is_dir()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert leftover.is_dir()  # nothing cleans up after SIGKILL
    old = tmp_path / f".pre.old-{dead_pid()}"
    old.mkdir()
    run(catalog, out, tmp_path / "cache")
    assert not leftover.exists() and not old.exists()
    err = capsys.readouterr().err
    assert f"removed {leftover}: left by an earlier build that was killed" in err
    assert f"removed {old}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "catalog", "pre"]


def test_a_live_builds_temporary_folder_and_other_names_are_left_alone(
    catalog: Path, tmp_path: Path, capsys
):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".pre.tmp-{sleeper.pid}"
        other = tmp_path / f".other.tmp-{dead_pid()}"  # another folder's leftover
        not_ours = tmp_path / ".pre.tmp-notapid"
        for folder in (live, other, not_ours):
            folder.mkdir()
        assert writer.stale_temporaries(tmp_path / "pre") == []
        run(catalog, tmp_path / "pre", tmp_path / "cache")
        assert live.is_dir() and other.is_dir() and not_ours.is_dir()
        assert "removed" not in capsys.readouterr().err
    finally:
        sleeper.kill()
        sleeper.wait()


def test_every_output_file_is_flushed_before_the_rename(
    catalog: Path, tmp_path: Path, monkeypatch
):
    flushed: list[str] = []
    real = writer._fsync_path

    def record(path: str) -> None:
        flushed.append(path)
        real(path)

    monkeypatch.setattr(writer, "_fsync_path", record)
    out = tmp_path / "pre"
    run(catalog, out, tmp_path / "cache")
    tmp = tmp_path / f".pre.tmp-{os.getpid()}"
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    in_tmp = {str(Path(p).relative_to(tmp)) for p in flushed if Path(p).is_relative_to(tmp)}
    assert files and files <= in_tmp  # every file, while still in the temporary folder
    assert {"meta.json", "products.json", "neighbours.json", "shop.sqlite"} <= files
    assert flushed[-1] == str(tmp_path)  # and the folder holding the rename


def test_switching_resize_or_precision_re_embeds(catalog: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = run(catalog, tmp_path / "a", cache)
    assert first.embedded_now == 24 and first.from_cache == 0
    again = run(catalog, tmp_path / "b", cache)
    assert again.embedded_now == 0 and again.from_cache == 24
    stretched = run(catalog, tmp_path / "c", cache, resize="stretch")
    assert stretched.embedded_now == 24 and stretched.from_cache == 0
    bf16 = colour_extractor()
    bf16.identity["precision"] = "bfloat16"
    other = run(catalog, tmp_path / "d", cache, extractor=bf16)
    assert other.embedded_now == 24 and other.from_cache == 0
    assert "0 from cache" in other.line() and other.precision == "bfloat16"


def test_precision_of_a_keras_file_joins_the_identity_meta_and_cache(
    catalog: Path, tmp_path: Path, capsys
):
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(
        keras.layers.Rescaling(1 / 255)(inp))
    path = tmp_path / "tiny.keras"
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x)).save(path)
    fp32 = load_extractor(str(path), precision="float32")
    bf16 = load_extractor(str(path), precision="bfloat16")
    assert fp32.identity["precision"] == "float32" and bf16.identity["precision"] == "bfloat16"
    assert bf16.model.layers[-1].dtype_policy.name == "mixed_bfloat16"
    cache = tmp_path / "cache"
    a = build(BuildOptions(catalog=catalog, out=tmp_path / "a", model=str(path),
                           cache_dir=cache, progress=False))
    b = build(BuildOptions(catalog=catalog, out=tmp_path / "b", model=str(path),
                           cache_dir=cache, progress=False, precision="bfloat16"))
    assert (a.embedded_now, b.embedded_now, b.from_cache) == (24, 24, 0)
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    assert meta["model"]["precision"] == "bfloat16"
    assert b.precision_line() == "precision: bfloat16"
    from pipeline.cli import main

    assert main(["build", str(catalog), "--out", str(tmp_path / "c"), "--model", str(path),
                 "--cache-dir", str(cache), "--no-progress", "--precision", "auto"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("precision:"))
    assert line in ("precision: bfloat16 (auto: CPU has amx_bf16)",
                    "precision: bfloat16 (auto: CPU has avx512_bf16)",
                    "precision: bfloat16 (auto: CPU has amx_bf16, avx512_bf16)",
                    "precision: float32 (auto: no AMX or AVX512-BF16)")


def test_auto_precision_follows_the_cpu_flags():
    assert resolve_precision("auto", {"avx2", "amx_bf16"}) == "bfloat16"
    assert resolve_precision("auto", {"avx512f", "avx512_bf16"}) == "bfloat16"
    assert resolve_precision("auto", {"avx2", "avx512f"}) == "float32"
    assert resolve_precision("float32", {"amx_bf16"}) == "float32"
    with pytest.raises(Exception, match="--precision half"):
        resolve_precision("half")
