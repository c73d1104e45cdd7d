from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizers.fuse import FuseConfig
from optimizers.presets import PRECISION_PRESETS, PRESETS, Preset, build, get_preset
from optimizers.quantize_dynamic import DynamicQuantConfig
from optimizers.quantize_static import StaticQuantConfig
from optimizers.types import op_histogram
from tests.optimizers.conftest import min_cosine, run

# Entropy/percentile calibration is for CNNs: onnxruntime's histogram calibrator rejects
# tensors with a near-empty range, which BERT's constant-folded masks have.
BERT_PRESETS = sorted(
    n for n in PRESETS if n not in ("cpu-int8-static-entropy", "cpu-int8-static-percentile")
)


@pytest.mark.parametrize("name", sorted(n for n in PRESETS if n.startswith("cpu-int8-static")))
def test_static_preset_builds_and_agrees_on_cnn(cnn_onnx: Path, tmp_path: Path, name):
    rng = np.random.default_rng(0)
    calibration = [{"pixels": rng.standard_normal((16, 3, 32, 32)).astype(np.float32)}]
    variant = build(PRESETS[name], cnn_onnx, tmp_path, FuseConfig(), calibration)
    assert op_histogram(variant.path).get("QuantizeLinear", 0) >= 3
    feed = {"pixels": rng.standard_normal((4, 3, 32, 32)).astype(np.float32)}
    assert min_cosine(run(variant.path, feed), run(cnn_onnx, feed)) >= 0.98


@pytest.mark.parametrize("name", BERT_PRESETS)
def test_preset_builds_and_agrees_on_bert(bert_onnx: Path, bert_feed, tmp_path: Path, name):
    preset = PRESETS[name]
    ranges = None
    if preset.smooth is not None:  # a smoothing preset takes ranges its caller measured
        from convert_model.stages.preparation import activation_ranges

        ranges = activation_ranges(bert_onnx, [bert_feed])
    variant = build(preset, bert_onnx, tmp_path, FuseConfig(model_type="bert"), [bert_feed],
                    ranges=ranges)
    assert variant.path == tmp_path / f"model.{name}.onnx" and variant.path.is_file()
    assert variant.precision == preset.precision and variant.device == preset.device
    assert not list(tmp_path.glob(".*fused*")), "intermediate fused graph removed"
    limit = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.98}[preset.precision]
    assert min_cosine(run(variant.path, bert_feed), run(bert_onnx, bert_feed)) >= limit
    passes = [r["pass"] for r in variant.recipe]
    assert passes[0] == ("fuse" if preset.fuse else passes[0])


def test_presets_are_data_with_one_precision_pass():
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset) and preset.name == name
    for names in PRECISION_PRESETS.values():
        assert set(names) <= set(PRESETS)
    with pytest.raises(ValueError, match="more than one precision pass"):
        Preset(
            name="x",
            description="x",
            device="cpu",
            precision="int8",
            dynamic=DynamicQuantConfig(),
            static=StaticQuantConfig(),
        )


def test_get_preset_unknown_lists_known():
    with pytest.raises(ValueError, match="known: cpu-fp32"):
        get_preset("tpu-int4")


def test_build_with_exclusions_keeps_nodes_fp32(outlier_onnx: Path, tmp_path: Path):
    variant = build(
        PRESETS["cpu-int8"],
        outlier_onnx,
        tmp_path,
        FuseConfig(),
        nodes_to_exclude=("/MatMul_1",),
        name="cpu-int8-mixed",
    )
    assert variant.name == "cpu-int8-mixed" and variant.path.name == "model.cpu-int8-mixed.onnx"
    assert op_histogram(variant.path).get("MatMul") == 1
    feed = {"x": np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)}
    assert min_cosine(run(variant.path, feed), run(outlier_onnx, feed)) > 0.999


def test_per_tensor_preset_stores_embedding_tables_int8(bert_onnx: Path, bert_feed,
                                                        tmp_path: Path):
    import onnx

    variant = build(PRESETS["cpu-int8-plain-per-tensor"], bert_onnx, tmp_path,
                    FuseConfig(model_type="bert"), [bert_feed])
    model = onnx.load(str(variant.path))
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    tables = [
        t.name for t in model.graph.initializer
        if t.data_type in eight_bit and "embeddings" in t.name and len(t.dims) == 2
    ]
    # word and token-type tables at least: each looked up, then dequantized
    assert any("word_embeddings" in name for name in tables), tables
    assert len(tables) >= 2 and variant.details["ops"]["DequantizeLinear"] >= len(tables)
    assert min_cosine(run(variant.path, bert_feed), run(bert_onnx, bert_feed)) >= 0.98
