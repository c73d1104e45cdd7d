"""Tabular edge cases: accuracy reads class probabilities; NaN support only where it exists."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.evaluate import default_metric_output
from tests.convert_model.test_cli import _assert_one_line_error, run_cli
from tests.converters.test_tabular import FEATURES, _data, xgb_binary  # noqa: F401  fixture


def test_default_metric_output_for_accuracy_is_the_class_scores():
    assert default_metric_output("accuracy", ("label", "probabilities")) == "probabilities"
    assert default_metric_output("accuracy", ("output_0",)) == "output_0"
    assert default_metric_output("spearman", ("label", "probabilities")) == "label"


def test_cli_xgboost_classifier_with_a_csv_eval_set_and_accuracy(
    request: pytest.FixtureRequest, tmp_path: Path
):
    model = request.getfixturevalue("xgb_binary")  # test_tabular's fixture
    x, y = _data(200)
    eval_csv = tmp_path / "eval.csv"
    with eval_csv.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*FEATURES, "label"])
        for row, label in zip(x, (y > 0).astype(int), strict=True):
            writer.writerow([*(f"{v:.6g}" for v in row), int(label)])
    out = tmp_path / "bundle"
    result = run_cli(model, "--eval-data", eval_csv, "--metric", "accuracy", "--out", out,
                     "--sweep", "off", "-q")
    assert result.returncode == 0, result.stderr
    measurement = json.loads((out / "manifest.json").read_text())["measurement"]
    assert measurement["eval"]["output"] == "probabilities"
    assert measurement["original"]["task_metric"] > 0.5


@pytest.fixture(scope="module")
def scaled_logistic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _data(400)
    path = tmp_path_factory.mktemp("logistic") / "logistic.skops"
    sio.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(x, y), path)
    return path


def test_sklearn_schema_refuses_nan_when_the_model_does(scaled_logistic: Path, tmp_path: Path):
    out = tmp_path / "bundle"
    result = run_cli(scaled_logistic, "--out", out, "--sweep", "off", "-q")
    assert result.returncode == 0, result.stderr
    schema = json.loads((out / "manifest.json").read_text())["input_schema"]
    assert schema["missing"] == "not accepted"
    rows = np.random.default_rng(1).standard_normal((4, 10)).astype(np.float32)
    good = tmp_path / "good.npz"
    np.savez(good, input=rows)
    assert run_cli("verify", out, "--data", good).returncode == 0
    rows[2, 3] = np.nan
    holes = tmp_path / "holes.npz"
    np.savez(holes, input=rows)
    _assert_one_line_error(run_cli("verify", out, "--data", holes),
                           "row(s) 2 hold NaN", "does not accept missing values")


def test_onnxruntime_errors_stay_off_the_console(tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["t", "i"], ["y"])], "g",
        [helper.make_tensor_value_info("i", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((4, 2), np.float32), "t")])
    path = tmp_path / "gather.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    code = ("import numpy as np\nfrom converters import onnx_graph\n"
            f"s = onnx_graph.session({str(path)!r}, 1)\n"
            "try:\n    onnx_graph.run(s, {'i': np.array([10])})\n"
            "except Exception as e:\n    print(type(e).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "InvalidArgument", done.stderr
    assert "onnxruntime" not in done.stderr, "the error reaches the caller, not the console"
