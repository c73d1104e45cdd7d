"""ONNX files the optimizer tests share, built once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures.models import OutlierMLP, TinyCNN, Zoo, export_onnx


@pytest.fixture(scope="session")
def bert_onnx(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT classifier exported by optimum (the fp32 graph of a bundle)."""
    from convert_model import convert

    out = tmp_path_factory.mktemp("bert-bundle") / "b"
    convert(model_zoo.bert, out=out, precision="fp32")
    return out / "model.onnx"


@pytest.fixture(scope="session")
def bert_feed(bert_onnx: Path) -> dict[str, np.ndarray]:
    with np.load(bert_onnx.parent / "sample_inputs.npz") as data:
        return {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("1/")}


@pytest.fixture(scope="session")
def outlier_bert_onnx(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT encoder with outlier channels, exported (the fp32 graph of a bundle)."""
    from benchmarks.latency import LatencyConfig
    from convert_model import convert

    out = tmp_path_factory.mktemp("outlier-bert-bundle") / "b"
    convert(model_zoo.outlier_bert, out=out, precision="fp32", sweep=None,
            latency=LatencyConfig(warmup=1, rounds=3))
    return out / "model.onnx"


@pytest.fixture(scope="session")
def outlier_bert_feed(outlier_bert_onnx: Path) -> dict[str, np.ndarray]:
    with np.load(outlier_bert_onnx.parent / "sample_inputs.npz") as data:
        return {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("1/")}


@pytest.fixture(scope="session")
def outlier_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(
        OutlierMLP(), torch.randn(4, 32), tmp_path_factory.mktemp("mlp") / "m.onnx", "x"
    )


@pytest.fixture(scope="session")
def cnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(
        TinyCNN(), torch.randn(2, 3, 32, 32), tmp_path_factory.mktemp("cnn") / "cnn.onnx", "pixels"
    )


def run(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
