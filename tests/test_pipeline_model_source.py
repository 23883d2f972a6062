"""Where dynamic mode finds a catalog's model file (no TensorFlow, no ../shared needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.models import ModelError, file_sha256
from pipeline.search import REPO_ROOT, resolve_model_source

DEMO_META = REPO_ROOT / "precomputed" / "demo" / "meta.json"


def model_meta(path: str, sha: str) -> dict:
    return {"name": "file:m.keras", "path": path, "weights_sha256": sha}


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    """A stand-in repository root holding models/m.keras; returns (root, its sha256)."""
    model = tmp_path / "repo" / "models" / "m.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"stand-in model bytes")
    return tmp_path / "repo", file_sha256(model)


def test_recorded_relative_path_is_read_from_the_repository_root(repo, tmp_path, monkeypatch):
    root, sha = repo
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    meta = model_meta("models/m.keras", sha)
    assert resolve_model_source(meta, None, root=root) == str(root / "models" / "m.keras")
    with pytest.raises(ModelError, match=r"not found \(models/m.keras, .*elsewhere.*\)"):
        resolve_model_source(meta, None, root=elsewhere)


def test_current_directory_comes_before_the_repository_root(repo, tmp_path, monkeypatch):
    root, sha = repo
    cwd = tmp_path / "cwd"
    (cwd / "models").mkdir(parents=True)
    (cwd / "models" / "m.keras").write_bytes(b"stand-in model bytes")
    monkeypatch.chdir(cwd)
    assert resolve_model_source(model_meta("models/m.keras", sha), None, root=root) == str(
        Path("models/m.keras")
    )


def test_explicit_path_comes_first_and_is_checked(repo, tmp_path, monkeypatch):
    root, sha = repo
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other.keras"
    other.write_bytes(b"another model")
    meta = model_meta("models/m.keras", sha)
    with pytest.raises(ModelError, match="model mismatch"):
        resolve_model_source(meta, other, root=root)
    copy = tmp_path / "copy.keras"
    copy.write_bytes(b"stand-in model bytes")
    assert resolve_model_source(meta, copy, root=root) == str(copy)


def test_bundled_demo_model_resolves_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = json.loads(DEMO_META.read_text(encoding="utf-8"))["model"]
    assert not Path(meta["path"]).is_absolute()
    found = resolve_model_source(meta)
    assert Path(found) == REPO_ROOT / "precomputed" / "models" / Path(meta["path"]).name


def test_builtin_models_need_no_file():
    assert resolve_model_source({"name": "vgg16"}, None) == "vgg16"
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model_source({"name": "mystery"}, None)
