"""Hostile checkpoint folders: links and index entries that point outside the folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.convert_model.hostile import Case, assert_refused, registry
from tests.fixtures.models import Zoo

CASES, case = registry()


def _bert(zoo: Zoo, tmp: Path) -> tuple[Path, Path]:
    """A copy of the tiny BERT folder, and a private file beside it (outside the folder)."""
    folder = Path(shutil.copytree(zoo.bert, tmp / "m"))
    secret = tmp / "id_rsa"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    return folder, secret


def _link(folder: Path, name: str, target: Path) -> None:
    (folder / name).unlink(missing_ok=True)
    (folder / name).symlink_to(target)


@case("tokenizer vocab linked outside")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, secret = _bert(zoo, tmp)
    _link(folder, "vocab.txt", secret)
    return Case(args=[str(folder)], needles=["vocab.txt", "symbolic link", "outside"],
                checkpoint=folder)


@case("merges linked to the password file")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, _ = _bert(zoo, tmp)
    _link(folder, "merges.txt", Path("/etc/passwd"))
    return Case(args=[str(folder)], needles=["merges.txt", "/etc/passwd"], checkpoint=folder)


@case("preprocessor config linked outside")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, secret = _bert(zoo, tmp)
    _link(folder, "preprocessor_config.json", secret)
    return Case(args=[str(folder)], needles=["preprocessor_config.json", "outside"],
                checkpoint=folder)


@case("config.json linked outside")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, _ = _bert(zoo, tmp)
    elsewhere = tmp / "elsewhere.json"
    shutil.move(folder / "config.json", elsewhere)
    _link(folder, "config.json", elsewhere)
    return Case(args=[str(folder)], needles=["config.json", "outside"], checkpoint=folder)


@case("subfolder linked outside")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, _ = _bert(zoo, tmp)
    (tmp / "private").mkdir()
    _link(folder, "1_Pooling", tmp / "private")
    return Case(args=[str(folder)], needles=["1_Pooling", "outside"], checkpoint=folder)


@case("symlink loop inside the folder")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, _ = _bert(zoo, tmp)
    os.symlink(folder / "loop-b", folder / "loop-a")
    os.symlink(folder / "loop-a", folder / "loop-b")
    return Case(args=[str(folder)], needles=["/m/loop-", "symbolic link loop"], checkpoint=folder)


def _sharded(zoo: Zoo, tmp: Path, shard: str) -> Path:
    folder, _ = _bert(zoo, tmp)
    (tmp / "elsewhere").mkdir()
    shutil.move(folder / "model.safetensors", tmp / "elsewhere" / "model-00001.safetensors")
    index = {"metadata": {}, "weight_map": {"bert.embeddings.word_embeddings.weight": shard}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


@case("sharded index naming a shard in ../elsewhere")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder = _sharded(zoo, tmp, "../elsewhere/model-00001.safetensors")
    return Case(args=[str(folder)], needles=["model.safetensors.index.json",
                                             "../elsewhere/model-00001.safetensors"],
                checkpoint=folder)


@case("sharded index naming an absolute shard")
def _(zoo: Zoo, tmp: Path) -> Case:
    shard = str(tmp / "elsewhere" / "model-00001.safetensors")
    folder = _sharded(zoo, tmp, shard)
    return Case(args=[str(folder)], needles=["model.safetensors.index.json", shard],
                checkpoint=folder)


@case("sharded index whose weight map is a list")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder = _sharded(zoo, tmp, "model-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text('{"weight_map": ["a"]}')
    return Case(args=[str(folder)], needles=["model.safetensors.index.json", "weight_map"],
                checkpoint=folder)


@case("tokenizer config naming a vocab file outside")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder, secret = _bert(zoo, tmp)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["vocab_file"] = str(secret)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return Case(args=[str(folder)], needles=["tokenizer_config.json", "vocab_file", "outside"],
                checkpoint=folder)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_folder_entry_outside_is_refused(model_zoo: Zoo, tmp_path: Path, capsys,
                                                 name: str) -> None:
    assert_refused(CASES[name](model_zoo, tmp_path), tmp_path, capsys)


def test_hashed_files_cover_every_shard_an_index_names(tmp_path: Path) -> None:
    from converters.hf_folder import _hashed_files

    (tmp_path / "shards").mkdir()
    for name in ("shards/a.safetensors", "shards/b.safetensors"):
        (tmp_path / name).write_bytes(b"x")
    index = {"weight_map": {"w1": "shards/a.safetensors", "w2": "shards/b.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    names = {p.relative_to(tmp_path).as_posix() for p in _hashed_files(tmp_path)}
    assert {"shards/a.safetensors", "shards/b.safetensors"} <= names


def test_link_inside_the_folder_is_allowed(tmp_path: Path) -> None:
    from converters.paths import check_folder

    (tmp_path / "real.txt").write_text("x")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    check_folder(tmp_path)  # no error: the link stays inside


def test_hub_cache_snapshot_links_into_its_blobs_are_allowed(tmp_path: Path) -> None:
    from converters.paths import check_folder

    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc123").write_text("{}")
    snapshot = repo / "snapshots" / "rev1"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to("../../blobs/abc123")
    check_folder(snapshot)  # no error: the hub cache's own layout
    (snapshot / "vocab.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="vocab.txt"):
        check_folder(snapshot)
