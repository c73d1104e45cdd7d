"""Keras 3 .keras archives on the torch backend; .h5 and SavedModel refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convert_model import convert
from convert_model.core.errors import CheckpointError, UsageError
from converters.forms import detect_form
from converters.keras_model import import_keras, load_keras, refuse_tensorflow
from converters.registry import LoadOptions
from converters.types import CheckpointForm


def tiny_cnn(path: Path, *, with_lambda: bool = False) -> Path:
    """A logo-detection-style CNN (32x32 RGB -> 2 classes), saved as .keras."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    layers = [
        keras.Input((32, 32, 3), name="image"),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ]
    if with_lambda:
        layers.insert(1, keras.layers.Lambda(lambda x: x * 2.0))
    keras.Sequential(layers).save(path)
    return path


def test_keras_cnn_converts_through_the_torch_path(tmp_path: Path):
    path = tiny_cnn(tmp_path / "logo.keras")
    assert detect_form(path) is CheckpointForm.KERAS
    result = convert(path, out=tmp_path / "b", sweep=None)
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["source"]["form"] == "keras"
    assert manifest["export"]["strategy"] == "dynamo"
    assert [i["name"] for i in manifest["inputs"]] == ["image"]
    assert manifest["inputs"][0]["shape"][1:] == [32, 32, 3]
    fp32 = manifest["variants"][0]
    assert fp32["status"] == "pass" and all(p["max_abs_diff"] <= 1e-4 for p in fp32["parity"])


def test_keras_backend_is_not_left_in_the_environment():
    import_keras()
    assert os.environ.get("KERAS_BACKEND") in (None, os.environ.get("KERAS_BACKEND"))
    code = "import os; print(os.environ.get('KERAS_BACKEND'))"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    script = ("import sys; sys.path.insert(0, '.'); from converters.keras_model import "
              f"import_keras; import_keras(); {code}")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"


def test_keras_lambda_layer_needs_trust_pickle(tmp_path: Path):
    path = tiny_cnn(tmp_path / "lambda.keras", with_lambda=True)
    with pytest.raises(CheckpointError, match="Lambda.*--trust-pickle"):
        load_keras(path, CheckpointForm.KERAS, LoadOptions())
    loaded = load_keras(path, CheckpointForm.KERAS, LoadOptions(trust_pickle=True))
    assert "without safe_mode" in loaded.notes[0]


@pytest.mark.parametrize(("name", "form"), [("model.h5", CheckpointForm.KERAS_H5),
                                            ("saved", CheckpointForm.TF_SAVEDMODEL)])
def test_keras_h5_and_savedmodel_are_refused_naming_tensorflow(tmp_path: Path, name, form):
    path = tmp_path / name
    if form is CheckpointForm.TF_SAVEDMODEL:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\x08\x01")
    else:
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert detect_form(path) is form
    with pytest.raises(UsageError, match="needs TensorFlow.*save it as .keras"):
        refuse_tensorflow(path, form, LoadOptions())
