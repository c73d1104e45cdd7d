"""Eval-set formats: .npz, .jsonl and .csv read into the same arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.evaluate import load_eval_set
from convert_model.core.errors import UsageError

DTYPES = {"input_ids": np.dtype(np.int64), "attention_mask": np.dtype(np.int64)}


def test_eval_set_formats_agree(tmp_path: Path):
    ids = np.array([[2, 5, 6, 3], [2, 7, 3, 0]])
    mask = (ids > 0).astype(np.int64)
    labels = np.array([1, 0])
    np.savez(tmp_path / "e.npz", input_ids=ids, attention_mask=mask, labels=labels)
    (tmp_path / "e.jsonl").write_text(
        "\n".join(
            json.dumps({"input_ids": i.tolist(), "attention_mask": m.tolist(), "label": int(y)})
            for i, m, y in zip(ids, mask, labels, strict=True)
        )
        + "\n"
    )
    names = ("input_ids", "attention_mask")
    a = load_eval_set(tmp_path / "e.npz", "accuracy", "logits", names, DTYPES)
    b = load_eval_set(tmp_path / "e.jsonl", "accuracy", "logits", names, DTYPES)
    for name in names:
        assert np.array_equal(a.inputs[name], b.inputs[name])
        assert b.inputs[name].dtype == np.int64
    assert np.array_equal(a.labels, b.labels) and b.size == 2


def test_eval_set_csv_orders_features_and_reads_missing(tmp_path: Path):
    (tmp_path / "e.csv").write_text("b,a,label\n1.5,,1\n-2,3,0\n")
    got = load_eval_set(
        tmp_path / "e.csv",
        "accuracy",
        "probabilities",
        ("input",),
        {"input": np.dtype(np.float32)},
        features=("a", "b"),
    )
    assert got.inputs["input"].dtype == np.float32
    assert np.isnan(got.inputs["input"][0, 0]) and got.inputs["input"][0, 1] == 1.5
    assert got.labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("e.jsonl", '{"input_ids": [1, 2], "label": 1}\nnot json\n', "line 2 is not JSON"),
        (
            "e.jsonl",
            '{"input_ids": [1, 2], "label": 1}\n{"input_ids": [1], "label": 0}\n',
            "do not stack",
        ),
        ("e.csv", "a,b\n1,2\n", "no 'label' column"),
        ("e.csv", "a,label\nx,1\n", "not a number"),
    ],
)
def test_eval_set_bad_files_are_usage_errors(tmp_path: Path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=message):
        load_eval_set(
            tmp_path / name, "accuracy", "logits", ("input_ids",), {"input_ids": np.dtype(np.int64)}
        )
