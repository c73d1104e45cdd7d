"""Tree ensembles and scikit-learn models: exact probability and label parity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convert_model import convert
from convert_model.core.errors import UsageError
from converters.tabular import EXTREMES, adversarial_rows

RNG = np.random.default_rng(0)  # fixtures draw in their own order; models still vary
FEATURES = [f"feat_{i}" for i in range(10)]


def _data(rows: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    x = RNG.standard_normal((rows, 10)) * 13.7
    y = (x[:, 0] > 2.3).astype(int) + (x[:, 1] > -4.1).astype(int)
    return x, y


@pytest.fixture(scope="module")
def xgb_binary(tmp_path_factory) -> Path:
    import xgboost as xgb

    x, y = _data()
    x = x.astype(np.float32)
    x[RNG.random(x.shape) < 0.1] = np.nan  # researchers' data has holes
    model = xgb.XGBClassifier(n_estimators=25, max_depth=4).fit(x, (y > 0).astype(int))
    model.get_booster().feature_names = FEATURES
    path = tmp_path_factory.mktemp("xgb") / "revert.json"
    model.get_booster().save_model(str(path))
    return path


@pytest.fixture(scope="module")
def lgb_multiclass(tmp_path_factory) -> Path:
    import lightgbm as lgb

    x, y = _data()
    model = lgb.LGBMClassifier(n_estimators=25, verbose=-1).fit(x, y)
    path = tmp_path_factory.mktemp("lgb") / "quality.txt"
    model.booster_.save_model(str(path))
    return path


def _check_exact(result) -> dict:
    manifest = json.loads((result.out / "manifest.json").read_text())
    fp32 = manifest["variants"][0]
    assert manifest["export"]["strategy"] == "onnxmltools"
    assert fp32["status"] == "pass" and fp32["budget"]["max_abs_diff"] == 1e-5
    assert fp32["details"]["differing_rows"] == []
    labels = [p for p in fp32["parity"] if p["name"] == "label"]
    assert labels and all(p["max_abs_diff"] == 0 for p in labels), "labels identical"
    probs = [p for p in fp32["parity"] if p["name"] == "probabilities"]
    assert all(p["max_abs_diff"] <= 1e-5 and p["top1_agreement"] == 1.0 for p in probs)
    assert [v["name"] for v in manifest["variants"]] == ["fp32", "cpu-fp32"], "no int8 for trees"
    # Where the graph optimizer changed no operator, the variant is the export over again:
    # not timed against it (at microseconds, noise looks like gain); elsewhere it is timed.
    optimised = manifest["variants"][1]
    details = optimised["details"]
    unchanged = details["fusions"] == {} and details["nodes_before"] == details["nodes_after"]
    assert optimised["reason"].startswith("not timed: the optimizer changed no operator") == (
        unchanged)
    assert (optimised["latency"] is None) == unchanged
    return manifest


def test_xgboost_binary_with_missing_values_converts_exactly(xgb_binary: Path, tmp_path: Path):
    manifest = _check_exact(convert(xgb_binary, out=tmp_path / "b"))
    assert manifest["source"]["form"] == "xgboost"
    assert manifest["input_schema"] == {
        "input": "input",
        "dtype": "float32",
        "features": FEATURES,
        "missing": "NaN",
    }
    with np.load(tmp_path / "b" / "sample_inputs.npz") as data:
        rows = data["1/input"]
    assert np.isnan(rows).any() and (np.abs(rows) >= 1e30).any(), "NaN and huge values tried"


def test_lightgbm_thresholds_are_exact_on_split_values(lgb_multiclass: Path, tmp_path: Path):
    _check_exact(convert(lgb_multiclass, out=tmp_path / "b"))


def test_lightgbm_reads_values_within_1e_35_as_zero_like_its_predict(tmp_path: Path):
    """LightGBM's zero splits sit at +-1e-35 and its predict reads |x| <= 1e-35 as 0."""
    import lightgbm as lgb
    import onnxruntime as ort

    rng = np.random.default_rng(7)
    x = rng.choice([-1.0, 0.0, 1.0], size=(600, 2))
    y = (x[:, 0] < 0).astype(int) + 2 * (x[:, 0] > 0).astype(int)  # three sides of zero
    booster = lgb.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1).fit(
        x, y).booster_
    path = tmp_path / "zero.txt"
    booster.save_model(str(path))
    zero = np.float32(1e-35)
    edge = np.array([-zero, zero, np.nextafter(zero, np.float32(1)),
                     -np.nextafter(zero, np.float32(1)), np.float32(-1e-36), np.float32(0),
                     np.float32(np.nan), np.float32(-1)], np.float32)
    rows = np.stack([edge, np.zeros_like(edge)], axis=1)
    result = convert(path, out=tmp_path / "b", sweep=None, precision="fp32")
    session = ort.InferenceSession(str(result.out / "model.onnx"))
    labels, probabilities = session.run(None, {"input": rows})
    expected = booster.predict(rows)
    assert (labels == expected.argmax(1)).all(), (labels, expected.argmax(1))
    assert np.abs(probabilities - expected).max() < 1e-5


def test_lightgbm_float32_trap_is_real_without_threshold_rounding(lgb_multiclass: Path):
    """The naive conversion disagrees on threshold values: the rounding is what fixes it."""
    import lightgbm as lgb
    import onnxruntime as ort
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from converters.tabular import _thresholds_lightgbm

    booster = lgb.Booster(model_file=str(lgb_multiclass))
    rows = adversarial_rows(_thresholds_lightgbm(booster), 10, 2000, 0, EXTREMES["lightgbm"])
    naive = convert_lightgbm(
        booster,
        initial_types=[("input", FloatTensorType([None, 10]))],
        target_opset=15,
        zipmap=False,
    )
    labels = ort.InferenceSession(naive.SerializeToString()).run(None, {"input": rows})[0]
    assert (labels != booster.predict(rows).argmax(1)).any()


def test_xgboost_regressor_outputs_variable(tmp_path: Path):
    import xgboost as xgb

    x, y = _data(600)
    path = tmp_path / "reg.ubj"
    xgb.XGBRegressor(n_estimators=10).fit(x, y.astype(float)).save_model(str(path))
    result = convert(path, out=tmp_path / "b")
    assert [o["name"] for o in result.manifest.outputs] == ["variable"]
    assert result.manifest.variant("fp32").passed


def test_sklearn_pipeline_pickle_needs_trust_pickle(tmp_path: Path):
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _data(600)
    path = tmp_path / "pipe.joblib"
    joblib.dump(
        make_pipeline(
            StandardScaler(), RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0)
        ).fit(x, y),
        path,
    )
    refused = subprocess.run(
        [sys.executable, "-m", "convert_model.cli", str(path), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "--trust-pickle" in refused.stderr
    assert not (tmp_path / "r").exists()
    _check_exact(convert(path, out=tmp_path / "b", trust_pickle=True))


def test_skops_forest_converts_without_trust(tmp_path: Path):
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = _data(600)
    path = tmp_path / "gb.skops"
    sio.dump(GradientBoostingClassifier(n_estimators=10, random_state=0).fit(x, y), path)
    manifest = _check_exact(convert(path, out=tmp_path / "b"))
    assert manifest["source"]["form"] == "skops"


def test_verify_data_enforces_the_input_schema(xgb_binary: Path, tmp_path: Path):
    from convert_model.bundle.verify import check_data

    out = tmp_path / "b"
    convert(xgb_binary, out=out, precision="fp32")
    good = tmp_path / "good.npz"
    np.savez(good, input=RNG.standard_normal((5, 10)).astype(np.float32))
    assert check_data(out, good).ok
    bad = tmp_path / "bad.npz"
    np.savez(bad, input=RNG.standard_normal((5, 9)).astype(np.float32))
    with pytest.raises(UsageError, match="needs 10 features \\(feat_0, feat_1"):
        check_data(out, bad)
    cli = subprocess.run(
        [sys.executable, "-m", "convert_model.cli", "verify", str(out), "--data", str(bad)],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "feat_9" in cli.stderr and "Traceback" not in cli.stderr
