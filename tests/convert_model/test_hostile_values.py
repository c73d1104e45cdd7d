"""Bad values where they enter: state_dicts, model files, graphs, paths and notebooks. Each
is exit 2 and one line naming the file, the field and what was expected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.convert_model.hostile import Case, assert_refused, payload, registry
from tests.fixtures.models import CUSTOM_SPEC, Zoo

CASES, case = registry()


def _tagger(zoo: Zoo, p: Path, spec: str = CUSTOM_SPEC) -> list[str]:
    return [str(p), "--model-class", f"{zoo.model_file}:TinyTagger", "--input-spec", spec]


def _state(zoo: Zoo) -> dict[str, torch.Tensor]:
    return dict(zoo.custom_module().state_dict())


def _pt(tmp: Path, obj: object) -> Path:
    p = tmp / "weights.pt"
    torch.save(obj, p)
    return p


@case("state_dict with int keys")
def _(zoo, tmp):
    p = _pt(tmp, {0: torch.zeros(3), 1: torch.zeros(2)})
    return Case(args=_tagger(zoo, p), needles=[str(p), "keys [0, 1] are not strings"],
                checkpoint=p)


@case("state_dict with a meta-device tensor")
def _(zoo, tmp):
    state = _state(zoo)
    state["score.weight"] = torch.empty(1, 16, device="meta")
    p = _pt(tmp, state)
    return Case(args=_tagger(zoo, p), needles=[str(p), "score.weight", "meta-device"],
                checkpoint=p)


@case("state_dict with a sparse tensor")
def _(zoo, tmp):
    state = _state(zoo)
    state["score.weight"] = state["score.weight"].to_sparse()
    p = _pt(tmp, state)
    return Case(args=_tagger(zoo, p), needles=[str(p), "score.weight", "sparse"], checkpoint=p)


@case("state_dict with a complex64 weight")
def _(zoo, tmp):
    state = _state(zoo)
    state["score.weight"] = state["score.weight"].to(torch.complex64)
    p = tmp / "complex.safetensors"
    save_file(state, str(p))
    return Case(args=_tagger(zoo, p), needles=[str(p), "score.weight", "complex"], checkpoint=p)


@case("state_dict with an integer weight")
def _(zoo, tmp):
    state = _state(zoo)
    state["score.weight"] = state["score.weight"].to(torch.int64)
    p = tmp / "ints.safetensors"
    save_file(state, str(p))
    return Case(args=_tagger(zoo, p), needles=[str(p), "wrongly-typed keys", "score.weight"],
                checkpoint=p)


@case("model-class file calling sys.exit(0) at import")
def _(zoo, tmp):
    marker = tmp / "marker"
    module = tmp / "net.py"
    module.write_text("import sys\nsys.exit(0)\n" + payload(marker) + "\n")
    p = Path(shutil.copy(zoo.custom_safetensors, tmp / "w.safetensors"))
    return Case(args=[str(p), "--model-class", f"{module}:Net", "--input-spec", CUSTOM_SPEC],
                needles=["net.py", "sys.exit(0)"], checkpoint=p, marker=marker)


@case("forward returning a string")
def _(zoo, tmp):
    module = tmp / "net.py"
    module.write_text("import torch\nclass Net(torch.nn.Module):\n"
                      "    def forward(self, x):\n        return 'positive'\n")
    p = tmp / "w.safetensors"
    save_file({}, str(p))
    return Case(args=[str(p), "--model-class", f"{module}:Net", "--input-spec",
                      "x:float32[b,3]"], needles=[str(p), "returns no tensors", "str"],
                checkpoint=p)


@case("input-spec naming more inputs than forward takes")
def _(zoo, tmp):
    p = Path(shutil.copy(zoo.custom_safetensors, tmp / "w.safetensors"))
    spec = CUSTOM_SPEC + ",extra:float32[batch,2]"
    return Case(args=_tagger(zoo, p, spec), needles=[str(p), "3 inputs", "forward takes"],
                checkpoint=p)


@case("input-spec naming an input a transformers model lacks")
def _(zoo, tmp):
    folder = Path(shutil.copytree(zoo.bert, tmp / "m"))
    return Case(args=[str(folder), "--input-spec", "pixels:float32[b,3]"],
                needles=[str(folder), "['pixels']", "does not take"], checkpoint=folder)


def _onnx(tmp: Path, make) -> Path:
    import onnx
    from onnx import helper

    p = tmp / "model.onnx"
    onnx.save(helper.make_model(make(helper), opset_imports=[helper.make_opsetid("", 18)]),
              str(p))
    return p


@case("onnx graph with a string input")
def _(zoo, tmp):
    from onnx import TensorProto

    def make(h):
        x = h.make_tensor_value_info("text", TensorProto.STRING, [1])
        y = h.make_tensor_value_info("y", TensorProto.STRING, [1])
        return h.make_graph([h.make_node("Identity", ["text"], ["y"])], "g", [x], [y])

    p = _onnx(tmp, make)
    return Case(args=[str(p)], needles=[str(p), "input 'text'", "string tensor"], checkpoint=p)


@case("onnx graph with a sequence output")
def _(zoo, tmp):
    from onnx import TensorProto

    def make(h):
        x = h.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        seq = h.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [2])
        return h.make_graph([h.make_node("SequenceConstruct", ["x"], ["s"])], "g", [x], [seq])

    p = _onnx(tmp, make)
    return Case(args=[str(p)], needles=[str(p), "output 's'", "sequence_type", "not a tensor"],
                checkpoint=p)


@case("onnx graph with no outputs")
def _(zoo, tmp):
    from onnx import TensorProto

    def make(h):
        x = h.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        return h.make_graph([], "g", [x], [])

    p = _onnx(tmp, make)
    return Case(args=[str(p)], needles=[str(p), "no outputs"], checkpoint=p)


@case("checkpoint path that is a symlink loop")
def _(zoo, tmp):
    os.symlink(tmp / "b.pt2", tmp / "a.pt2")
    os.symlink(tmp / "a.pt2", tmp / "b.pt2")
    return Case(args=[str(tmp / "a.pt2")], needles=[str(tmp / "a.pt2"), "symbolic link loop"])


@case("checkpoint path that is a FIFO")
def _(zoo, tmp):
    os.mkfifo(tmp / "model.pt2")
    return Case(args=[str(tmp / "model.pt2")], needles=[str(tmp / "model.pt2"),
                                                        "not a regular file"])


@case("path with terminal escapes")
def _(zoo, tmp):
    p = tmp / "evil\x1b]0;owned\x07\x1b[2J\r.pt2"
    return Case(args=[str(p)], needles=["evil\\x1b]0;owned\\x07\\x1b[2J\\x0d.pt2",
                                        "no such file"])


@case("nbformat 3 notebook")
def _(zoo, tmp):
    nb = tmp / "old.ipynb"
    nb.write_text(json.dumps({"nbformat": 3, "worksheets": [{"cells": []}], "metadata": {}}))
    return Case(args=[str(nb)], needles=[str(nb), "nbformat 3", "worksheets"], checkpoint=nb)


@case("notebook whose cells are not objects")
def _(zoo, tmp):
    nb = tmp / "nb.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "cells": ["print(1)"], "metadata": {}}))
    return Case(args=[str(nb)], needles=[str(nb), "cell 1", "not an object"], checkpoint=nb)


@case("tokenizer ids beyond vocab_size")
def _(zoo, tmp):
    from transformers import BertConfig, BertForSequenceClassification

    folder = Path(shutil.copytree(zoo.bert, tmp / "m"))
    small = BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=8, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(small).save_pretrained(folder)
    return Case(args=[str(folder)], needles=[str(folder), "token id", "vocab_size is 8"],
                checkpoint=folder)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_value_is_one_line_naming_it(model_zoo: Zoo, tmp_path: Path, capsys,
                                             name: str) -> None:
    line = assert_refused(CASES[name](model_zoo, tmp_path), tmp_path, capsys)
    assert "\x1b" not in line and "\r" not in line


def test_tokenizer_without_a_pad_token_pads_with_its_end_token(model_zoo: Zoo,
                                                               tmp_path: Path) -> None:
    from converters.hf_folder import load_hf_folder
    from converters.registry import LoadOptions
    from converters.types import CheckpointForm

    folder = Path(shutil.copytree(model_zoo.bert, tmp_path / "m"))
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        config = json.loads((folder / name).read_text())
        config.pop("pad_token", None)
        config["eos_token"] = "[SEP]"
        (folder / name).write_text(json.dumps(config))
    loaded = load_hf_folder(folder, CheckpointForm.HF_MODEL, LoadOptions())
    assert len(loaded.examples) == 2 and loaded.examples[1]["input_ids"].shape[0] == 3


def test_state_dict_source_hash_covers_the_model_class_file(model_zoo: Zoo) -> None:
    from converters.registry import LoadOptions
    from converters.state_dict import load_state_dict
    from converters.types import CheckpointForm

    options = LoadOptions(model_class=f"{model_zoo.model_file}:TinyTagger",
                          input_spec=CUSTOM_SPEC)
    loaded = load_state_dict(model_zoo.custom_safetensors, CheckpointForm.STATE_DICT, options)
    assert Path(model_zoo.model_file) in loaded.hashed_files
