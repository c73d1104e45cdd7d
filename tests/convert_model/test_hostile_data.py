"""Bad eval data, calibration samples, verify data and caches: one line each, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from convert_model import cli
from tests.convert_model.hostile import Case, assert_refused, registry
from tests.fixtures.models import CUSTOM_SPEC, Zoo

CASES, case = registry()
ROWS = 6


def _tagger(zoo: Zoo, tmp: Path, *extra: str) -> list[str]:
    p = Path(shutil.copy(zoo.custom_safetensors, tmp / "w.safetensors"))
    return [str(p), "--model-class", f"{zoo.model_file}:TinyTagger", "--input-spec",
            CUSTOM_SPEC, "--precision", "fp32", "--sweep", "off", *extra]


def _eval(zoo: Zoo, tmp: Path, labels, features=None, name: str = "eval.npz") -> list[str]:
    p = tmp / name
    features = np.zeros((ROWS, 12), np.float32) if features is None else features
    np.savez(p, features=features, mask=np.ones_like(features), labels=labels)
    return _tagger(zoo, tmp, "--eval-data", str(p), "--metric", "accuracy")


EVAL_CASES = {
    "eval data with 0 rows": (np.zeros(0, np.int64), np.zeros((0, 12), np.float32),
                              ["eval.npz", "holds none"]),
    "eval data with 0-d labels": (np.array(3), None, ["eval.npz", "one label per example"]),
    "eval data with 2-D labels": (np.zeros((ROWS, 2), np.int64), None,
                                  ["eval.npz", "accuracy needs", "labels (N,)"]),
    "eval data with string labels": (np.array(["cat"] * ROWS), None,
                                     ["eval.npz", "'labels' must be numbers"]),
    "eval data with labels out of range": (np.full(ROWS, 7), None,
                                           ["eval.npz", "labels 0..3", "4 classes"]),
    "eval data of the wrong width": (np.zeros(ROWS, np.int64), np.zeros((ROWS, 7), np.float32),
                                     ["eval.npz", "'features'", "[6, 7]", "[batch, 12]"]),
}
for _name, (_labels, _features, _needles) in EVAL_CASES.items():
    def _eval_case(zoo, tmp, _labels=_labels, _features=_features, _needles=_needles):
        return Case(args=_eval(zoo, tmp, _labels, _features), needles=_needles)

    case(_name)(_eval_case)


@case("sample data of the wrong width")
def _(zoo, tmp):
    p = tmp / "sample.npz"
    np.savez(p, features=np.zeros((2, 7), np.float32), mask=np.zeros((2, 7), np.float32))
    return Case(args=_tagger(zoo, tmp, "--sample-data", str(p)),
                needles=["sample.npz", "'features'", "[2, 7]", "[batch, 12]"])


def _bert_eval(zoo: Zoo, tmp: Path, text: str, name: str = "eval.jsonl") -> Case:
    folder = Path(shutil.copytree(zoo.bert, tmp / "m"))
    p = tmp / name
    p.write_text(text)
    return Case(args=[str(folder), "--eval-data", str(p), "--metric", "accuracy",
                      "--precision", "fp32", "--sweep", "off"], needles=[name],
                checkpoint=folder)


def _rows(ids: list[int], count: int = 2) -> str:
    row = {"input_ids": ids, "attention_mask": [1] * len(ids), "token_type_ids": [0] * len(ids),
           "label": 0}
    return "\n".join(json.dumps(row) for _ in range(count)) + "\n"


@case("eval token ids of 2^70")
def _(zoo, tmp):
    built = _bert_eval(zoo, tmp, _rows([2, 2**70, 3]))
    return Case(**{**built.__dict__, "needles": ["eval.jsonl", "do not stack"]})


@case("eval token ids beyond the vocabulary")
def _(zoo, tmp):
    built = _bert_eval(zoo, tmp, _rows([2, 10**6, 3]))
    return Case(**{**built.__dict__, "needles": ["eval.jsonl", "token id 1000000"]})


@case("eval sequences longer than the position limit")
def _(zoo, tmp):
    built = _bert_eval(zoo, tmp, _rows([2] * 200))
    return Case(**{**built.__dict__, "needles": ["eval.jsonl", "200 tokens", "at most 128"]})


def _tree_csv(zoo, tmp: Path, text: str) -> Case:
    model = Path(shutil.copy(zoo.trees["xgboost"], tmp / "model.json"))
    p = tmp / "eval.csv"
    p.write_text(text)
    return Case(args=[str(model), "--eval-data", str(p), "--metric", "accuracy", "--sweep",
                      "off"], needles=["eval.csv"], checkpoint=model)


@case("csv cell over the field limit")
def _(zoo, tmp):
    built = _tree_csv(zoo, tmp, "f0,f1,f2,label\n" + "1" * 200_000 + ",1,1,0\n")
    return Case(**{**built.__dict__, "needles": ["eval.csv", "not a readable CSV", "limit"]})


@case("csv with ragged rows")
def _(zoo, tmp):
    built = _tree_csv(zoo, tmp, "f0,f1,f2,label\n1,2,3,0\n1,2\n")
    return Case(**{**built.__dict__, "needles": ["eval.csv", "line 3 has 2 cells", "4"]})


@case("csv with 10^6 columns")
def _(zoo, tmp):
    header = ",".join(f"c{i}" for i in range(10**6)) + ",label\n"
    built = _tree_csv(zoo, tmp, header + ",".join(["0"] * (10**6 + 1)) + "\n")
    return Case(**{**built.__dict__, "needles": ["eval.csv", "columns", "at most"]})


@case("reference cache that is a file")
def _(zoo, tmp):
    (tmp / "cache").write_text("not a folder")
    return Case(args=["reference:articlequality"], needles=["cache", "CONVERT_MODEL_CACHE"])


@case("reference cache on a read-only mount")
def _(zoo, tmp):
    return Case(args=["reference:articlequality"], needles=["/proc/", "CONVERT_MODEL_CACHE"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_data_is_one_line_naming_it(hostile_zoo, tmp_path: Path, capsys,
                                            monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    cache = "/proc/convert-model-cache" if "read-only" in name else str(tmp_path / "cache")
    monkeypatch.setenv("CONVERT_MODEL_CACHE", cache)
    assert_refused(CASES[name](hostile_zoo, tmp_path), tmp_path, capsys)


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    from benchmarks.evaluate import load_eval_set

    p = tmp_path / "eval.csv"
    p.write_bytes("\ufefff0,f1,label\n1,2,0\n3,4,1\n".encode())
    data = load_eval_set(p, "accuracy", "probabilities", ["input"], features=["f0", "f1"])
    assert data.inputs["input"].tolist() == [[1, 2], [3, 4]]


def test_verify_data_of_the_wrong_width_is_one_line(model_zoo: Zoo, tmp_path: Path,
                                                   capsys) -> None:
    out = tmp_path / "b"
    assert cli.main([str(model_zoo.custom_pt2), "--out", str(out), "--precision", "fp32",
                     "--sweep", "off", "-q"]) == 0
    p = tmp_path / "rows.npz"
    np.savez(p, features=np.zeros((2, 7), np.float32), mask=np.zeros((2, 7), np.float32))
    assert_refused(Case(args=["verify", str(out), "--data", str(p)],
                        needles=["rows.npz", "'features'", "[2, 7]", ", 12]"]),
                   tmp_path, capsys)
