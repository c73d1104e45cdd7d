"""A corpus of bad inputs: each is exit code 2, one line naming what is wrong, no traceback,
and no output folder left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from convert_model import cli
from tests.convert_model.hostile import registry
from tests.converters.test_notebook import MODEL_CELL, notebook
from tests.fixtures.models import CUSTOM_SPEC, Zoo

CASES, case = registry()


def _copy_folder(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _tagger(zoo: Zoo) -> list[str]:
    return ["--model-class", f"{zoo.model_file}:TinyTagger", "--input-spec", CUSTOM_SPEC]


@case("missing path")
def _(zoo, tmp):
    p = tmp / "nowhere" / "model.safetensors"
    return [str(p)], [str(p), "no such file"]


@case("empty safetensors")
def _(zoo, tmp):
    p = tmp / "empty.safetensors"
    p.write_bytes(b"")
    return [str(p)], [str(p), "empty"]


@case("empty pt")
def _(zoo, tmp):
    p = tmp / "empty.pt"
    p.write_bytes(b"")
    return [str(p), *_tagger(zoo)], [str(p), "empty"]


@case("truncated safetensors")
def _(zoo, tmp):
    p = tmp / "trunc.safetensors"
    p.write_bytes(zoo.custom_safetensors.read_bytes()[:200])
    return [str(p), *_tagger(zoo)], [str(p), "truncated or corrupt"]


@case("bit-flipped safetensors header")
def _(zoo, tmp):
    data = bytearray(zoo.custom_safetensors.read_bytes())
    data[10] ^= 0xFF
    p = tmp / "flipped.safetensors"
    p.write_bytes(bytes(data))
    return [str(p), *_tagger(zoo)], [str(p), "truncated or corrupt"]


@case("pt that is not a zip")
def _(zoo, tmp):
    p = tmp / "text.pt"
    p.write_text("definitely not a checkpoint")
    return [str(p), *_tagger(zoo)], [str(p), "not a torch.save file"]


@case("zip that is not a torch file")
def _(zoo, tmp):
    p = tmp / "other.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    return [str(p), *_tagger(zoo)], [str(p), "not a torch.save file"]


@case("truncated torch.save zip")
def _(zoo, tmp):
    p = tmp / "trunc.pt"
    p.write_bytes(zoo.custom_pt.read_bytes()[:-300])
    return [str(p), *_tagger(zoo)], [str(p)]


@case("invalid config.json")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    (folder / "config.json").write_text("{ this is not json")
    return [str(folder)], ["config.json", "not valid JSON"]


@case("empty config.json")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    (folder / "config.json").write_text("")
    return [str(folder)], ["config.json", "empty"]


@case("config.json not an object")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    (folder / "config.json").write_text("[1, 2]")
    return [str(folder)], ["config.json", "expected a JSON object"]


@case("config.json without model_type")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 32}))
    return [str(folder)], ["config.json", "no 'model_type'"]


@case("unknown model_type")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "flux-capacitor"
    (folder / "config.json").write_text(json.dumps(config))
    return [str(folder)], ["config.json", "flux-capacitor"]


@case("weights missing from a model folder")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    (folder / "model.safetensors").unlink()
    return [str(folder)], [str(folder), "no weights found"]


@case("corrupt weights in a model folder")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    return [str(folder)], [str(folder), "cannot load the weights"]


@case("head weights missing for the task")
def _(zoo, tmp):
    return [str(zoo.distilbert), "--task", "text-classification"], [
        str(zoo.distilbert), "weights missing for task 'text-classification'", "classifier"]


@case("state_dict missing keys")
def _(zoo, tmp):
    state = zoo.custom_module().state_dict()
    state.pop("score.weight")
    p = tmp / "missing.safetensors"
    save_file(state, str(p))
    return [str(p), *_tagger(zoo)], [str(p), "missing keys: score.weight"]


@case("state_dict unexpected keys")
def _(zoo, tmp):
    state = zoo.custom_module().state_dict()
    state["extra.bias"] = torch.zeros(3)
    p = tmp / "unexpected.safetensors"
    save_file(state, str(p))
    return [str(p), *_tagger(zoo)], [str(p), "unexpected keys: extra.bias"]


@case("state_dict wrongly-shaped keys")
def _(zoo, tmp):
    state = zoo.custom_module().state_dict()
    state["score.weight"] = torch.zeros(2, 16)
    p = tmp / "shapes.safetensors"
    save_file(state, str(p))
    return [str(p), *_tagger(zoo)], [str(p), "score.weight (2, 16) (model wants (1, 16))"]


@case("state_dict of non-tensors")
def _(zoo, tmp):
    p = tmp / "numbers.pt"
    torch.save({"lr": 0.1, "epoch": 3}, p)
    return [str(p), *_tagger(zoo)], [str(p), "not a state_dict"]


@case("model-class file missing")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", f"{tmp}/nope.py:Net",
            "--input-spec", CUSTOM_SPEC], ["nope.py", "no such file"]


@case("model-class class missing")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", f"{zoo.model_file}:Nope",
            "--input-spec", CUSTOM_SPEC], ["tiny_tagger.py", "no class 'Nope'", "TinyTagger"]


@case("model-class constructor raises")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", f"{zoo.model_file}:Broken",
            "--input-spec", CUSTOM_SPEC], ["Broken", "constructor fails on purpose"]


@case("model-class file with a syntax error")
def _(zoo, tmp):
    p = tmp / "broken.py"
    p.write_text("class Net(:\n    pass\n")
    return [str(zoo.custom_safetensors), "--model-class", f"{p}:Net", "--input-spec",
            CUSTOM_SPEC], ["broken.py", "SyntaxError"]


@case("model-class without a colon")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", "tiny_tagger.py", "--input-spec",
            CUSTOM_SPEC], ["--model-class", "expected path/to/file.py:Class"]


@case("model-kwargs not JSON")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), *_tagger(zoo), "--model-kwargs", "{hidden: 3"], [
        "--model-kwargs", "not valid JSON"]


@case("model-kwargs the constructor rejects")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), *_tagger(zoo), "--model-kwargs", '{"depth": 3}'], [
        "TinyTagger", "depth"]


@case("input-spec syntax error")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", f"{zoo.model_file}:TinyTagger",
            "--input-spec", "features:float32[batch,12"], ["--input-spec", "malformed"]


@case("input-spec unknown dtype")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", f"{zoo.model_file}:TinyTagger",
            "--input-spec", "features:complex64[batch,12]"], ["--input-spec", "unknown dtype"]


@case("input-spec shape the model rejects")
def _(zoo, tmp):
    return [str(zoo.custom_safetensors), "--model-class", f"{zoo.model_file}:TinyTagger",
            "--input-spec", "features:float32[batch,7],mask:float32[batch,7]"], [
        str(zoo.custom_safetensors), "rejects inputs shaped by --input-spec", "features(1, 7)"]


@case("plain module without input-spec")
def _(zoo, tmp):
    return [str(zoo.custom_torchscript)], [str(zoo.custom_torchscript), "--input-spec"]


@case("unknown task")
def _(zoo, tmp):
    return [str(zoo.bert), "--task", "time-travel"], ["unknown task 'time-travel'"]


@case("notebook with a syntax error")
def _(zoo, tmp):
    nb = notebook(tmp / "nb.ipynb", "import torch\nmodel = (")
    return [str(nb)], [str(nb), "cell 1", "SyntaxError"]


@case("notebook with no model")
def _(zoo, tmp):
    nb = notebook(tmp / "nb.ipynb", "x = 41 + 1")
    return [str(nb)], [str(nb), "no torch.nn.Module"]


@case("notebook that times out")
def _(zoo, tmp):
    nb = notebook(tmp / "nb.ipynb", "import time\ntime.sleep(120)")
    return [str(nb), "--notebook-timeout", "2"], [str(nb), "timed out after 2s"]


@case("notebook that is not JSON")
def _(zoo, tmp):
    nb = tmp / "nb.ipynb"
    nb.write_text("print('hello')")
    return [str(nb)], [str(nb), "not a valid notebook"]


@case("notebook naming a missing object")
def _(zoo, tmp):
    nb = notebook(tmp / "nb.ipynb", "import torch\n" + MODEL_CELL)
    return [str(nb), "--object", "net"], [str(nb), "defines no 'net'"]


@case("unwritable output folder")
def _(zoo, tmp):
    out = Path("/proc/convert-model-out") if os.geteuid() == 0 else Path("/convert-model-out")
    return [str(zoo.custom_pt2), "--out", str(out)], [str(out.parent)]


@case("output folder exists without force")
def _(zoo, tmp):
    (tmp / "out").mkdir()
    return [str(zoo.custom_pt2), "--out", str(tmp / "out")], [str(tmp / "out"), "--force"]


@case("non-UTF-8 path")
def _(zoo, tmp):
    p = Path(os.fsdecode(bytes(tmp) + b"/mod\xe9l.safetensors"))
    return [str(p), *_tagger(zoo)], ["no such file", "mod\\udce9l"]


@case("corrupt tokenizer file")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    (folder / "tokenizer.json").write_text("{ broken")
    return [str(folder)], [str(folder), "cannot load the tokenizer"]


@case("unknown suffix")
def _(zoo, tmp):
    p = tmp / "model.mlmodel"
    p.write_bytes(b"\x89HDF")
    return [str(p)], [str(p), "unrecognised checkpoint suffix '.mlmodel'"]


@case("folder without config.json")
def _(zoo, tmp):
    (tmp / "weights").mkdir()
    return [str(tmp / "weights")], [str(tmp / "weights"), "config.json"]


@case("whole pickled module without trust-pickle")
def _(zoo, tmp):
    return [str(zoo.pickled_module), "--input-spec", "x:float32[b,12]"], [
        str(zoo.pickled_module), "--trust-pickle"]


@case("corrupt torch.export file")
def _(zoo, tmp):
    p = tmp / "model.pt2"
    p.write_bytes(zoo.custom_pt2.read_bytes()[:400])
    return [str(p)], [str(p), "not a loadable torch.export program"]


@case("corrupt onnx file")
def _(zoo, tmp):
    p = tmp / "model.onnx"
    p.write_bytes(b"\x08\x07garbage-protobuf")
    return [str(p)], [str(p), "not a valid ONNX model"]


@case("corrupt xgboost model")
def _(zoo, tmp):
    p = tmp / "model.json"
    p.write_text('{"learner": {"broken": true}}')
    return [str(p)], [str(p), "not a loadable XGBoost model"]


@case("remote code without trust-remote-code")
def _(zoo, tmp):
    folder = _copy_folder(zoo.bert, tmp / "m")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    return [str(folder)], ["config.json", "--trust-remote-code"]


@case("eval data file missing")
def _(zoo, tmp):
    return [str(zoo.bert), "--eval-data", str(tmp / "eval.npz"), "--metric", "accuracy"], [
        "eval.npz", "cannot read the eval set"]


@case("eval data without metric")
def _(zoo, tmp):
    p = tmp / "eval.npz"
    np.savez(p, labels=np.zeros(3))
    return [str(zoo.bert), "--eval-data", str(p)], ["--eval-data needs --metric"]


@case("unknown reference model")
def _(zoo, tmp):
    return ["reference:no-such-model"], ["no-such-model"]


def test_bad_input_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_clear_line(model_zoo: Zoo, tmp_path: Path, capsys, name):
    args, needles = CASES[name](model_zoo, tmp_path)
    check_bad_input(args, needles, tmp_path, capsys)


def check_bad_input(args: list[str], needles: list[str], tmp_path: Path, capsys) -> None:
    """Exit code 2, one line naming each needle, no traceback, no output folder left."""
    out = tmp_path / "out"
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    before = {p.name for p in tmp_path.iterdir()}
    code = cli.main([*args, "-q"])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("convert-model: error: "), captured.err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    created = {p.name for p in tmp_path.iterdir()} - before
    assert not {n for n in created if n == "out" or n.startswith(".out.tmp")}, created


def test_full_disk_while_writing_is_exit_2_and_no_bundle(model_zoo: Zoo, tmp_path: Path,
                                                          capsys, monkeypatch):
    real = np.savez

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    code = cli.main([str(model_zoo.custom_pt2), "--out", str(tmp_path / "out"), "-q",
                     "--precision", "fp32"])
    monkeypatch.setattr(np, "savez", real)
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
