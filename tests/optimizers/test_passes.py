"""Each pass: the graph facts it must produce, and parity with the fp32 graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert_model.core.errors import OptimizationError
from optimizers.fp16 import Fp16Config, to_fp16
from optimizers.fuse import FuseConfig, fuse, ort_model_type
from optimizers.quantize_dynamic import DynamicQuantConfig, quantize_dynamic
from optimizers.quantize_static import StaticQuantConfig, quantize_static
from optimizers.types import op_histogram
from tests.optimizers.conftest import min_cosine, run


def test_fuse_bert_fires_transformer_fusions(bert_onnx: Path, bert_feed, tmp_path: Path):
    variant = fuse(bert_onnx, tmp_path / "f.onnx", FuseConfig(model_type="bert"))
    ops = op_histogram(variant.path)
    assert ops.get("Attention") == 2, "one fused Attention per layer"
    assert ops.get("SkipLayerNormalization", 0) >= 3
    assert "Softmax" not in ops and "Erf" not in ops, "attention and GELU left unfused"
    assert variant.details["fusions"]["Attention"] == 2
    assert variant.details["nodes_after"] < variant.details["nodes_before"]
    assert np.abs(run(variant.path, bert_feed) - run(bert_onnx, bert_feed)).max() < 1e-4


def test_fuse_unknown_model_uses_graph_optimizer(cnn_onnx: Path, tmp_path: Path):
    variant = fuse(cnn_onnx, tmp_path / "f.onnx", FuseConfig(model_type=None))
    assert variant.details["optimizer"] == "onnxruntime graph optimizer (extended)"
    assert "BatchNormalization" not in op_histogram(variant.path), "BN folded into Conv"
    feed = {"pixels": np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)}
    assert np.abs(run(variant.path, feed) - run(cnn_onnx, feed)).max() < 1e-4


@pytest.mark.parametrize(
    ("model_type", "expected"),
    [
        ("bert", "bert"),
        ("roberta", "bert"),
        ("xlm-roberta", "bert"),
        ("gpt2", "gpt2"),
        ("vit", "vit"),
        ("resnet", None),
        (None, None),
    ],
)
def test_ort_model_type_maps_hf_types(model_type, expected):
    assert ort_model_type(model_type) == expected


@pytest.mark.parametrize("fused", [False, True])
def test_quantize_dynamic_makes_integer_matmuls(bert_onnx: Path, bert_feed, tmp_path: Path, fused):
    src = (
        fuse(bert_onnx, tmp_path / "f.onnx", FuseConfig(model_type="bert")).path
        if fused
        else bert_onnx
    )
    variant = quantize_dynamic(src, tmp_path / "q.onnx", DynamicQuantConfig())
    ops = op_histogram(variant.path)
    if fused:
        assert ops.get("QAttention") == 2, "fused attention quantized"
    integer = ops.get("MatMulInteger", 0) + ops.get("DynamicQuantizeMatMul", 0)
    assert integer >= 4 and variant.details["quantized_nodes"] >= 4
    assert "Gather" in ops and "GatherInteger" not in ops, "embeddings stay fp32"
    assert variant.precision == "int8"
    assert min_cosine(run(variant.path, bert_feed), run(bert_onnx, bert_feed)) > 0.99


def test_quantize_dynamic_excludes_named_nodes(outlier_onnx: Path, tmp_path: Path):
    plain = op_histogram(
        quantize_dynamic(outlier_onnx, tmp_path / "a.onnx", DynamicQuantConfig()).path
    )
    kept = quantize_dynamic(
        outlier_onnx, tmp_path / "b.onnx", DynamicQuantConfig(nodes_to_exclude=("/MatMul_1",))
    )
    ops = op_histogram(kept.path)
    assert plain.get("MatMul", 0) == 0 and ops.get("MatMul") == 1
    assert kept.details["excluded_nodes"] == ["/MatMul_1"]


def test_quantize_dynamic_config_validates():
    with pytest.raises(ValueError, match="weight_type must be one of"):
        DynamicQuantConfig(weight_type="int4")


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_quantize_static_makes_qdq_graph(cnn_onnx: Path, tmp_path: Path, method, monkeypatch):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    rng = np.random.default_rng(0)
    calibration = [{"pixels": rng.standard_normal((8, 3, 32, 32)).astype(np.float32)}]
    variant = quantize_static(
        cnn_onnx, tmp_path / "s.onnx", StaticQuantConfig(method=method), calibration
    )
    ops = op_histogram(variant.path)
    assert ops.get("QuantizeLinear", 0) >= 3 and ops.get("DequantizeLinear", 0) >= 3
    assert variant.recipe[0]["method"] == method and variant.recipe[0]["calibration_samples"] == 8
    assert list(workdir.iterdir()) == [], "onnxruntime's temporary files stay out of the cwd"
    feed = {"pixels": rng.standard_normal((4, 3, 32, 32)).astype(np.float32)}
    assert min_cosine(run(variant.path, feed), run(cnn_onnx, feed)) > 0.98


def test_quantize_static_without_calibration_is_an_error(cnn_onnx: Path, tmp_path: Path):
    with pytest.raises(OptimizationError, match="needs calibration data"):
        quantize_static(cnn_onnx, tmp_path / "s.onnx", StaticQuantConfig(), [])


def test_fp16_keeps_io_types_and_agrees(bert_onnx: Path, bert_feed, tmp_path: Path, monkeypatch):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    fused = fuse(bert_onnx, tmp_path / "f.onnx", FuseConfig(model_type="bert", use_gpu=True))
    variant = to_fp16(fused.path, tmp_path / "h.onnx", Fp16Config())
    import onnx

    model = onnx.load(str(variant.path))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    halves = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) > 10, "weights stored as fp16"
    assert variant.device == "cuda"
    assert min_cosine(run(variant.path, bert_feed), run(bert_onnx, bert_feed)) >= 0.999
    assert list(workdir.iterdir()) == [], "shape inference's temporary files stay out of the cwd"


def test_quantize_dynamic_all_matmuls_quantizes_attention_scores(
    bert_onnx: Path, bert_feed, tmp_path: Path
):
    weights_only = op_histogram(
        quantize_dynamic(bert_onnx, tmp_path / "a.onnx", DynamicQuantConfig()).path
    )
    variant = quantize_dynamic(
        bert_onnx, tmp_path / "b.onnx", DynamicQuantConfig(constant_weights_only=False)
    )
    every = op_histogram(variant.path)
    assert every.get("MatMul", 0) < weights_only.get("MatMul", 0), "attention MatMuls quantized"
    assert min_cosine(run(variant.path, bert_feed), run(bert_onnx, bert_feed)) > 0.98
