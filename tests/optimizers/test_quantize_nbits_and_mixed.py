"""Weight-only n-bit and mixed-precision int8: graph facts, and accuracy on outlier channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizers.exclusion import quantizable_nodes
from optimizers.fuse import FuseConfig
from optimizers.presets import PRESETS, build
from optimizers.quantize_dynamic import DynamicQuantConfig
from optimizers.quantize_mixed import MixedQuantConfig, quantize_mixed
from optimizers.quantize_nbits import NBitsConfig, quantize_nbits
from optimizers.types import op_histogram
from tests.optimizers.conftest import min_cosine, run

BUDGET = 0.99  # the int8 min cosine budget


def _matmuls(path: Path) -> list[str]:
    return list(quantizable_nodes(path, ("MatMul",)))


def _cosine(variant_path: Path, fp32: Path, feed: dict[str, np.ndarray]) -> float:
    return min_cosine(run(variant_path, feed), run(fp32, feed))


def test_dynamic_int8_per_tensor_misses_the_budget_on_outlier_channels_and_per_channel_is_closer(
    outlier_bert_onnx: Path, outlier_bert_feed, tmp_path: Path
):
    per_tensor = build(PRESETS["cpu-int8-plain-per-tensor"], outlier_bert_onnx, tmp_path,
                       FuseConfig())
    per_channel = build(PRESETS["cpu-int8-plain"], outlier_bert_onnx, tmp_path, FuseConfig())
    tensor_cos = _cosine(per_tensor.path, outlier_bert_onnx, outlier_bert_feed)
    channel_cos = _cosine(per_channel.path, outlier_bert_onnx, outlier_bert_feed)
    assert tensor_cos < BUDGET, "per-tensor int8 should fail on outlier channels"
    assert channel_cos > tensor_cos


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_nbits_turns_every_constant_matmul_into_matmulnbits(
    outlier_bert_onnx: Path, outlier_bert_feed, tmp_path: Path, bits: int
):
    count = len(_matmuls(outlier_bert_onnx))
    variant = quantize_nbits(outlier_bert_onnx, tmp_path / "n.onnx", NBitsConfig(bits=bits))
    ops = op_histogram(variant.path)
    assert ops["MatMulNBits"] == count and variant.details["quantized_nodes"] == count
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops, "weights only"
    assert variant.recipe[0]["bits"] == bits and variant.recipe[0]["accuracy_level"] == 4
    cosine = _cosine(variant.path, outlier_bert_onnx, outlier_bert_feed)
    assert cosine > (0.99 if bits == 8 else 0.9)


def test_quantize_nbits_keeps_excluded_nodes_fp32(outlier_bert_onnx: Path, tmp_path: Path):
    nodes = _matmuls(outlier_bert_onnx)
    variant = quantize_nbits(outlier_bert_onnx, tmp_path / "n.onnx",
                             NBitsConfig(nodes_to_exclude=tuple(nodes[:2])))
    assert op_histogram(variant.path)["MatMulNBits"] == len(nodes) - 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bits": 3}, "bits must be one of"),
    ({"block_size": 24}, "block_size must be a power of 2"),
    ({"accuracy_level": 5}, "accuracy_level must be one of"),
])
def test_nbits_config_rejects_bad_values(kwargs: dict[str, int], message: str):
    with pytest.raises(ValueError, match=message):
        NBitsConfig(**kwargs)  # type: ignore[arg-type]


def test_quantize_mixed_per_channel_protection_quantizes_every_node(
    outlier_bert_onnx: Path, outlier_bert_feed, tmp_path: Path
):
    nodes = _matmuls(outlier_bert_onnx)
    plain = quantize_mixed(outlier_bert_onnx, tmp_path / "p.onnx", MixedQuantConfig())
    mixed = quantize_mixed(outlier_bert_onnx, tmp_path / "m.onnx",
                           MixedQuantConfig(sensitive_nodes=tuple(nodes[:-1])))
    assert op_histogram(mixed.path)["MatMulInteger"] == len(nodes)
    assert op_histogram(plain.path)["MatMulInteger"] == len(nodes)
    assert not (tmp_path / ".m.per-tensor.onnx").exists(), "intermediate file removed"
    assert mixed.details["protected_as"] == "per-channel"
    # All nodes but one per channel: closer than per-tensor.
    assert (_cosine(mixed.path, outlier_bert_onnx, outlier_bert_feed)
            > _cosine(plain.path, outlier_bert_onnx, outlier_bert_feed))


def test_quantize_mixed_fp32_protection_keeps_the_nodes_fp32(
    outlier_bert_onnx: Path, outlier_bert_feed, tmp_path: Path
):
    nodes = _matmuls(outlier_bert_onnx)
    config = MixedQuantConfig(protect="fp32", sensitive_nodes=tuple(nodes[:3]),
                              base=DynamicQuantConfig(per_channel=True))
    variant = quantize_mixed(outlier_bert_onnx, tmp_path / "m.onnx", config)
    before, after = op_histogram(outlier_bert_onnx), op_histogram(variant.path)
    assert after["MatMulInteger"] == len(nodes) - 3
    assert after["MatMul"] == before["MatMul"] - (len(nodes) - 3)
    assert after["DynamicQuantizeLinear"] >= 1
    assert variant.details["excluded_nodes"] == nodes[:3]


def test_mixed_config_rejects_per_channel_protection_of_a_per_channel_base():
    with pytest.raises(ValueError, match="needs a per-tensor base"):
        MixedQuantConfig(protect="per-channel", base=DynamicQuantConfig(per_channel=True))
    with pytest.raises(ValueError, match="protect must be one of"):
        MixedQuantConfig(protect="fp16")
