"""CatBoost models: CatBoost's own ONNX export, exact labels, probabilities within 1e-5."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert_model import convert
from convert_model.core.errors import CheckpointError
from converters.forms import detect_form
from converters.types import CheckpointForm

RNG = np.random.default_rng(3)
FEATURES = [f"count_{i}" for i in range(6)]


def _data(rows: int = 1200) -> tuple[np.ndarray, np.ndarray]:
    x = (RNG.standard_normal((rows, 6)) * 7.3).astype(np.float32)
    x[RNG.random(x.shape) < 0.1] = np.nan
    filled = np.nan_to_num(x)
    y = (filled[:, 0] > 1.1).astype(int) + (filled[:, 1] > -2.9).astype(int)
    return x, y


def _save(model, tmp_path_factory, name: str) -> Path:
    path = tmp_path_factory.mktemp("catboost") / name
    model.save_model(str(path), format="cbm")
    return path


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> Path:
    import catboost

    x, y = _data()
    model = catboost.CatBoostClassifier(iterations=40, depth=4, verbose=0, thread_count=1,
                                        random_seed=0, allow_writing_files=False)
    model.fit(catboost.Pool(x, y, feature_names=FEATURES))
    return _save(model, tmp_path_factory, "quality.cbm")


@pytest.fixture(scope="module")
def regressor(tmp_path_factory) -> Path:
    import catboost

    x, y = _data()
    model = catboost.CatBoostRegressor(iterations=30, depth=3, verbose=0, thread_count=1,
                                       random_seed=0, nan_mode="Max", allow_writing_files=False)
    model.fit(x, y.astype(float) + np.nan_to_num(x[:, 2]))
    return _save(model, tmp_path_factory, "score.cbm")


def _fp32(out: Path) -> tuple[dict, dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["export"]["strategy"] == "catboost"
    assert manifest["source"]["form"] == "catboost"
    fp32 = manifest["variants"][0]
    assert fp32["status"] == "pass" and fp32["budget"]["max_abs_diff"] == 1e-5
    assert fp32["details"]["differing_rows"] == []
    return manifest, fp32


def test_catboost_multiclass_converts_with_identical_labels_on_border_rows(
    multiclass: Path, tmp_path: Path
):
    manifest, fp32 = _fp32(convert(multiclass, out=tmp_path / "b", sweep=None).out)
    labels = [p for p in fp32["parity"] if p["name"] == "label"]
    assert labels and all(p["max_abs_diff"] == 0 for p in labels), "labels identical"
    probabilities = [p for p in fp32["parity"] if p["name"] == "probabilities"]
    assert probabilities and all(p["max_abs_diff"] <= 1e-5 for p in probabilities)
    assert manifest["input_schema"] == {
        "input": "input",
        "dtype": "float32",
        "features": FEATURES,
        "missing": "NaN",
        "nan_mode": "Min",
    }
    with np.load(tmp_path / "b" / "sample_inputs.npz") as data:
        rows = data["1/input"]
    assert np.isnan(rows).any() and np.isinf(rows).any(), "NaN and inf rows tried"
    assert [v["name"] for v in manifest["variants"]] == ["fp32", "cpu-fp32"], "no int8 for trees"
    # The graph optimizer leaves CatBoost's one tree-ensemble node as it was: the same
    # computation as the export, not timed against it (at microseconds, noise looks like gain).
    optimised = manifest["variants"][1]
    assert optimised["details"]["nodes_before"] == optimised["details"]["nodes_after"] == 1
    assert optimised["reason"].startswith("not timed: the optimizer changed no operator")
    assert optimised["latency"] is None and manifest["recommended"] == "fp32"


def test_catboost_graph_matches_predict_proba_on_border_values(multiclass: Path, tmp_path: Path):
    import catboost
    import onnxruntime as ort

    model = catboost.CatBoost()
    model.load_model(str(multiclass))
    result = convert(multiclass, out=tmp_path / "b", sweep=None, precision="fp32")
    borders = np.asarray(model.get_borders()[0], dtype=np.float32)
    rows = np.zeros((3 * len(borders), 6), dtype=np.float32)
    rows[:, 0] = np.concatenate([borders, np.nextafter(borders, np.float32(np.inf)),
                                 np.nextafter(borders, np.float32(-np.inf))])
    session = ort.InferenceSession(str(result.out / "model.onnx"))
    label, probabilities = session.run(["label", "probabilities"], {"input": rows})
    expected = model.predict(rows, prediction_type="Probability")
    assert np.abs(probabilities - expected).max() <= 1e-5
    assert (label == expected.argmax(1)).all()


def test_catboost_regressor_keeps_nan_mode_max(regressor: Path, tmp_path: Path):
    manifest, fp32 = _fp32(convert(regressor, out=tmp_path / "r", sweep=None).out)
    assert [o["name"] for o in manifest["outputs"]] == ["variable"]
    assert manifest["input_schema"]["nan_mode"] == "Max"
    assert all(p["max_abs_diff"] <= 1e-5 for p in fp32["parity"])


def test_catboost_categorical_features_are_refused_by_name(tmp_path: Path):
    import catboost
    import pandas as pd

    from converters.registry import LoadOptions, loader_for

    frame = pd.DataFrame({"bytes": RNG.standard_normal(200), "wiki": RNG.choice(["en", "de"], 200)})
    model = catboost.CatBoostClassifier(iterations=5, verbose=0, cat_features=["wiki"],
                                        allow_writing_files=False)
    model.fit(frame, RNG.integers(0, 2, 200))
    path = tmp_path / "cat.cbm"
    model.save_model(str(path))
    with pytest.raises(CheckpointError, match=r"numeric features only.*wiki \(categorical\)"):
        loader_for(detect_form(path))(path, CheckpointForm.CATBOOST, LoadOptions())
