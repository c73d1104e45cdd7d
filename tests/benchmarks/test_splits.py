"""Calibration and judgement never share a row, whatever data there is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.evaluate import EvalSet
from benchmarks.splits import MIN_CALIBRATION, DataSplit, shared_rows, split_data
from convert_model.bundle.model_card import MODEL_CARD
from tests.convert_model.test_cli import run_cli
from tests.fixtures.models import Zoo


def _examples(seed: int = 0) -> tuple[dict[str, np.ndarray], ...]:
    rng = np.random.default_rng(seed)
    return tuple({"x": rng.standard_normal((3, 4)).astype(np.float32),
                  "ids": rng.integers(0, 9, (3, 4))} for _ in range(2))


def _eval_set(rows: int) -> EvalSet:
    rng = np.random.default_rng(5)
    return EvalSet(inputs={"x": rng.standard_normal((rows, 4)).astype(np.float32),
                           "ids": rng.integers(0, 9, (rows, 4))},
                   labels=np.arange(rows) % 2, metric="accuracy", output="logits")


def test_split_data_holds_out_sample_rows_from_calibration():
    sample = _eval_set(48).inputs
    split = split_data(_examples(), None, sample)
    (calibration,), (check,) = split.calibration, split.extra_checks
    assert len(calibration["x"]) + len(check["x"]) == 48 and len(check["x"]) == 12
    assert shared_rows(calibration, check) == 0
    assert split.source == "sample-data" and split.warning is None


def test_split_data_judges_on_eval_rows_that_did_not_calibrate():
    eval_set = _eval_set(100)
    split = split_data(_examples(), eval_set, None)
    (calibration,) = split.calibration
    assert split.eval_set is not None
    assert len(calibration["x"]) == 25 and split.eval_set.size == 75
    assert shared_rows(calibration, split.eval_set.inputs) == 0
    assert shared_rows(calibration, eval_set.inputs) == 25, "the rows come from the eval set"
    assert len(split.eval_set.labels) == 75
    assert f"fewer than {MIN_CALIBRATION}" in (split.warning or "")


def test_split_data_draws_synthetic_calibration_unlike_the_check_inputs():
    examples = _examples()
    split = split_data(examples, None, None)
    (calibration,) = split.calibration
    assert calibration["ids"].dtype == examples[0]["ids"].dtype
    assert calibration["ids"].min() >= 0 and calibration["ids"].max() <= 8
    for example in examples:
        assert shared_rows(calibration, example) == 0
    assert split.source == "synthetic" and "synthetic" in (split.warning or "")


def test_data_split_validates_its_source():
    with pytest.raises(ValueError, match="source must be one of"):
        DataSplit(calibration=(), extra_checks=(), eval_set=None, source="check-inputs")


def test_static_int8_bundle_says_its_calibration_was_synthetic(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    result = run_cli(model_zoo.custom_pt2, "--out", out, "--preset", "cpu-int8-static",
                     "--sweep", "off")
    assert result.returncode in (0, 1), result.stderr
    assert "warning: static int8 calibrated on 32 synthetic inputs" in result.stderr
    calibration = json.loads((out / "manifest.json").read_text())["measurement"]["calibration"]
    assert calibration["source"] == "synthetic" and calibration["used_by"] == ["cpu-int8-static"]
    assert calibration["disjoint"] and "synthetic" in calibration["warning"]
    assert "Calibration: static int8 calibrated on 32 synthetic" in (out / MODEL_CARD).read_text()


def test_split_data_splits_nothing_off_when_no_variant_calibrates():
    eval_set = _eval_set(100)
    split = split_data(_examples(), eval_set, None, needed=False)
    assert split.eval_set is eval_set and split.calibration == () and split.warning is None
