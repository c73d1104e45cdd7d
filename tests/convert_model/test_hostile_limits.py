"""Tiny inputs that would exhaust the machine or crash a native library: every limit is
checked before anything is allocated or handed to native code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.convert_model.hostile import Case, assert_refused, registry
from tests.fixtures.models import CUSTOM_SPEC, Zoo

CASES, case = registry()


def _xgboost(trees: dict[str, Path], tmp: Path, edit) -> Path:
    data = json.loads(trees["xgboost"].read_text())
    edit(data["learner"])
    p = tmp / "model.json"
    p.write_text(json.dumps(data))
    return p


def _lightgbm(trees: dict[str, Path], tmp: Path, old: str, new: str) -> Path:
    text = trees["lightgbm"].read_text()
    assert old in text
    p = tmp / "model.txt"
    p.write_text(text.replace(old, new, 1))
    return p


def _set_features(learner: dict) -> None:
    learner["learner_model_param"]["num_feature"] = str(10**9)


def _bad_child(learner: dict) -> None:
    learner["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 10**6


def _bad_split(learner: dict) -> None:
    learner["gradient_booster"]["model"]["trees"][0]["split_indices"][0] = 99


XGBOOST_EDITS = {
    "xgboost json claiming 10^9 features": (_set_features, ["num_feature", "1,000,000,000"]),
    "xgboost tree child index out of range": (_bad_child, ["tree 0", "child index 1000000"]),
    "xgboost split on a feature the model lacks": (_bad_split, ["tree 0", "feature 99"]),
}
for _name, (_edit, _needles) in XGBOOST_EDITS.items():
    def _xgb_case(zoo, tmp, _edit=_edit, _needles=_needles):
        p = _xgboost(zoo.trees, tmp, _edit)
        return Case(args=[str(p)], needles=[str(p), *_needles], checkpoint=p)

    case(_name)(_xgb_case)

LIGHTGBM_EDITS = {
    "lightgbm text claiming 10^9 features": ("max_feature_idx=2", "max_feature_idx=999999999",
                                            ["max_feature_idx", "999,999,999"]),
    "lightgbm child index out of range": ("left_child=-1", "left_child=-77",
                                         ["Tree=0", "left_child", "-77"]),
    "lightgbm split on a feature the model lacks": ("split_feature=0", "split_feature=40",
                                                   ["Tree=0", "split_feature 40"]),
}
for _name, (_old, _new, _needles) in LIGHTGBM_EDITS.items():
    def _lgb_case(zoo, tmp, _old=_old, _new=_new, _needles=_needles):
        p = _lightgbm(zoo.trees, tmp, _old, _new)
        return Case(args=[str(p)], needles=[str(p), *_needles], checkpoint=p)

    case(_name)(_lgb_case)


def _tagger(zoo: Zoo, tmp: Path, *extra: str, spec: str = CUSTOM_SPEC) -> list[str]:
    p = Path(shutil.copy(zoo.custom_safetensors, tmp / "w.safetensors"))
    return [str(p), "--model-class", f"{zoo.model_file}:TinyTagger", "--input-spec", spec,
            *extra]


OPTION_CASES = {
    "threads far above the cores": (("--threads", "100000"), CUSTOM_SPEC,
                                    ["--threads", "100000", "usable cores"]),
    "input-spec of 10^12 elements": ((), "features:float32[1000000,1000000],mask:float32[b,12]",
                                     ["--input-spec", "elements", "2^31"]),
    "input-spec with 65 dims": ((), "x:float32[" + ",".join(["1"] * 65) + "]",
                                ["--input-spec", "65 dims", "at most 32"]),
    "input-spec range of 1e309": ((), "features:float32[b,12]@-1e309..1e309,mask:float32[b,12]",
                                  ["--input-spec", "not finite"]),
    "input-spec range outside the dtype": ((), "features:int8[b,12]@0..300,mask:float32[b,12]",
                                           ["--input-spec", "int8", "-128..128"]),
    "sweep of a million rows": (("--sweep", "1000000"), CUSTOM_SPEC,
                                ["--sweep", "1000000", "65,536"]),
    "sweep with too many points": (("--sweep", ",".join(map(str, range(1, 40)))), CUSTOM_SPEC,
                                   ["--sweep", "at most 16"]),
    "notebook timeout of inf": (("--notebook-timeout", "inf"), CUSTOM_SPEC,
                                ["--notebook-timeout", "finite", "inf"]),
    "notebook timeout of nan": (("--notebook-timeout", "nan"), CUSTOM_SPEC,
                                ["--notebook-timeout", "nan"]),
}
for _name, (_extra, _spec, _needles) in OPTION_CASES.items():
    def _option_case(zoo, tmp, _extra=_extra, _spec=_spec, _needles=_needles):
        args = _tagger(zoo, tmp, *_extra, spec=_spec)
        return Case(args=args, needles=_needles, checkpoint=Path(args[0]))

    case(_name)(_option_case)


@case("onnx graph with fixed dims of 10^12 elements")
def _(zoo, tmp):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000000, 1000000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000000, 1000000])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "big", [x], [y])
    p = tmp / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(p))
    return Case(args=[str(p)], needles=[str(p), "fixed dims", "2^31"], checkpoint=p)


def _config(zoo: Zoo, tmp: Path, text: str) -> Path:
    folder = Path(shutil.copytree(zoo.bert, tmp / "m"))
    (folder / "config.json").write_text(text)
    return folder


@case("config.json nested 100,000 deep")
def _(zoo, tmp):
    folder = _config(zoo, tmp, '{"model_type": "bert", "x": ' + "[" * 100_000 + "]" * 100_000
                     + "}")
    return Case(args=[str(folder)], needles=["config.json", "nested 100001 deep"],
                checkpoint=folder)


@case("config.json architectures not a list")
def _(zoo, tmp):
    config = json.loads((zoo.bert / "config.json").read_text())
    config["architectures"] = "BertForSequenceClassification"
    folder = _config(zoo, tmp, json.dumps(config))
    return Case(args=[str(folder)], needles=["config.json", "'architectures' must be a list"],
                checkpoint=folder)


@case("config.json architectures of numbers")
def _(zoo, tmp):
    config = json.loads((zoo.bert / "config.json").read_text())
    config["architectures"] = [1, 2]
    folder = _config(zoo, tmp, json.dumps(config))
    return Case(args=[str(folder)], needles=["config.json", "'architectures'"],
                checkpoint=folder)


@case("config.json model_type a number")
def _(zoo, tmp):
    config = json.loads((zoo.bert / "config.json").read_text())
    config["model_type"] = 7
    folder = _config(zoo, tmp, json.dumps(config))
    return Case(args=[str(folder)], needles=["config.json", "'model_type' must be a string"],
                checkpoint=folder)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_size_is_refused_before_allocating(hostile_zoo, tmp_path: Path, capsys,
                                                   name: str) -> None:
    assert_refused(CASES[name](hostile_zoo, tmp_path), tmp_path, capsys)


def test_good_tree_models_pass_their_checks(hostile_zoo) -> None:
    from converters.tabular_checks import check_lightgbm_text, check_xgboost

    check_xgboost(hostile_zoo.trees["xgboost"])
    check_lightgbm_text(hostile_zoo.trees["lightgbm"])


def test_binary_xgboost_model_is_read_first_in_a_child_process(hostile_zoo,
                                                                tmp_path: Path) -> None:
    import xgboost as xgb

    from convert_model.core.errors import CheckpointError
    from converters.tabular_checks import check_xgboost

    booster = xgb.Booster()
    booster.load_model(str(hostile_zoo.trees["xgboost"]))
    good = tmp_path / "model.ubj"
    booster.save_model(str(good))
    check_xgboost(good)
    bad = tmp_path / "bad.ubj"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match="bad.ubj"):
        check_xgboost(bad)
