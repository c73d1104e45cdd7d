"""Building into the cache: reuse, atomic replacement, failures and progress, with toy builders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import reference_models
from reference_models import Progress, ReferenceModel, Registry
from reference_models import cache as cache_module


class _CountingBuilder:
    """Writes a checkpoint and an eval set, counting how often it ran."""

    def __init__(self, *, fail: bool = False, write_checkpoint: bool = True) -> None:
        self.calls = 0
        self.fail = fail
        self.write_checkpoint = write_checkpoint

    def __call__(self, folder: Path, progress: Progress) -> None:
        self.calls += 1
        progress("writing toy files")
        if self.write_checkpoint:
            (folder / "toy.py").write_text("class Toy: ...\n")
            (folder / "toy.safetensors").write_bytes(b"weights")
        np.savez(folder / "eval.npz", x=np.zeros((2, 3)), labels=np.zeros(2, dtype=np.int64))
        if self.fail:
            raise RuntimeError("training diverged")


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> _CountingBuilder:
    """A toy model, registered in a private registry that `build` looks names up in."""
    builder = _CountingBuilder()
    registry = Registry()
    registry.register(
        ReferenceModel(
            name="toy",
            summary="a toy",
            form="state-dict",
            version="3",
            checkpoint="toy.safetensors",
            convert_options={"model_class": "toy.py:Toy"},
            metric="accuracy",
            metric_output="logits",
            chance=0.5,
            builder=builder,
        )
    )
    monkeypatch.setattr(cache_module, "get", registry.get)
    return builder


def test_build_writes_the_entry_and_returns_absolute_paths(
    toy: _CountingBuilder, tmp_path: Path
) -> None:
    built = reference_models.build("toy", cache_dir=tmp_path, progress=lambda line: None)
    assert built.folder == tmp_path / "toy-3"
    assert built.checkpoint == tmp_path / "toy-3" / "toy.safetensors"
    assert built.checkpoint.read_bytes() == b"weights"
    assert built.eval_data == tmp_path / "toy-3" / "eval.npz"
    assert built.options == {"model_class": f"{tmp_path / 'toy-3' / 'toy.py'}:Toy"}
    record = json.loads((built.folder / cache_module.MARKER).read_text())
    assert record["name"] == "toy" and record["version"] == "3"
    assert set(record["sha256"]) == {"toy.py", "toy.safetensors", "eval.npz"}
    assert "torch" in record["built_with"]
    assert [p.name for p in tmp_path.iterdir()] == ["toy-3"]


def test_build_reuses_a_finished_entry_without_rebuilding(
    toy: _CountingBuilder, tmp_path: Path
) -> None:
    lines: list[str] = []
    reference_models.build("toy", cache_dir=tmp_path, progress=lines.append)
    reference_models.build("toy", cache_dir=tmp_path, progress=lines.append)
    assert toy.calls == 1
    assert lines[-1].startswith("toy: cached at ")


def test_build_rebuilds_when_forced(toy: _CountingBuilder, tmp_path: Path) -> None:
    first = reference_models.build("toy", cache_dir=tmp_path, progress=lambda line: None)
    (first.folder / "stale.txt").write_text("from an older build")
    second = reference_models.build(
        "toy", cache_dir=tmp_path, force=True, progress=lambda line: None
    )
    assert toy.calls == 2
    assert not (second.folder / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["toy-3"]


def test_build_rebuilds_when_the_entry_has_no_completion_marker(
    toy: _CountingBuilder, tmp_path: Path
) -> None:
    (tmp_path / "toy-3").mkdir()
    (tmp_path / "toy-3" / "half-written.bin").write_bytes(b"")
    built = reference_models.build("toy", cache_dir=tmp_path, progress=lambda line: None)
    assert toy.calls == 1
    assert (built.folder / cache_module.MARKER).is_file()
    assert not (built.folder / "half-written.bin").exists()


def test_build_leaves_nothing_behind_when_the_builder_fails(
    toy: _CountingBuilder, tmp_path: Path
) -> None:
    toy.fail = True
    with pytest.raises(RuntimeError, match="training diverged"):
        reference_models.build("toy", cache_dir=tmp_path, progress=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_build_raises_when_the_builder_writes_no_checkpoint(
    toy: _CountingBuilder, tmp_path: Path
) -> None:
    toy.write_checkpoint = False
    with pytest.raises(RuntimeError, match="wrote no toy.safetensors"):
        reference_models.build("toy", cache_dir=tmp_path, progress=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_build_reports_progress_prefixed_with_the_model_name(
    toy: _CountingBuilder, tmp_path: Path
) -> None:
    lines: list[str] = []
    reference_models.build("toy", cache_dir=tmp_path, progress=lines.append)
    assert all(line.startswith("toy: ") for line in lines)
    assert "toy: writing toy files" in lines
    assert lines[-1].startswith("toy: built in ")


def test_build_prints_progress_to_stderr_by_default(
    toy: _CountingBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference_models.build("toy", cache_dir=tmp_path)
    captured = capsys.readouterr()
    assert "toy: writing toy files" in captured.err
    assert captured.out == ""


def test_build_uses_the_cache_root_when_no_cache_dir_is_given(
    toy: _CountingBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVERT_MODEL_CACHE", str(tmp_path))
    built = reference_models.build("toy", progress=lambda line: None)
    assert built.folder == tmp_path / "reference" / "toy-3"


def test_build_raises_listing_known_names_when_name_unknown(tmp_path: Path) -> None:
    with pytest.raises(reference_models.ReferenceModelError, match="known: article-descriptions"):
        reference_models.build("nope", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
