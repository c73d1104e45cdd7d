"""SmoothQuant-style scaling: fp32 unchanged, outlier channels moved into the weights."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks.int8_probe import Probe
from convert_model.core.errors import OptimizationError
from optimizers.exclusion import quantizable_nodes
from optimizers.fuse import FuseConfig
from optimizers.presets import PRESETS, Preset, build
from optimizers.quantize_dynamic import DynamicQuantConfig
from optimizers.quantize_nbits import NBitsConfig
from optimizers.smooth import SmoothConfig, smooth, smoothable
from optimizers.types import op_histogram
from tests.optimizers.conftest import min_cosine, run


@pytest.fixture(scope="module")
def ranges(outlier_bert_onnx: Path, outlier_bert_feed) -> dict[str, np.ndarray]:
    nodes = quantizable_nodes(outlier_bert_onnx, ("MatMul",))
    probe = Probe(outlier_bert_onnx, [outlier_bert_feed], outlier_bert_feed, threads=1)
    return probe.activation_ranges(sorted({a for _, ins in nodes.values() for a in ins}))


def test_smooth_keeps_fp32_outputs_and_adds_one_mul_per_scaled_activation(
    outlier_bert_onnx: Path, outlier_bert_feed, ranges, tmp_path: Path
):
    variant = smooth(outlier_bert_onnx, tmp_path / "s.onnx", SmoothConfig(), ranges)
    scaled = variant.details["smoothed_activations"]
    # The outlier channels of each layer's attention context (the output projection's input).
    assert len(scaled) >= 2 and all(spread >= 4.0 for spread in scaled.values())
    before, after = op_histogram(outlier_bert_onnx), op_histogram(variant.path)
    assert after["Mul"] == before["Mul"] + len(scaled)
    assert after["MatMul"] == before["MatMul"]
    diff = np.abs(run(variant.path, outlier_bert_feed) - run(outlier_bert_onnx, outlier_bert_feed))
    assert diff.max() < 1e-4


def test_fuse_then_smooth_then_per_channel_int8_is_closer_than_per_channel_alone(
    outlier_bert_onnx: Path, outlier_bert_feed, ranges, tmp_path: Path
):
    bert = FuseConfig(model_type="bert")
    smoothed = build(PRESETS["cpu-int8-smooth"], outlier_bert_onnx, tmp_path, bert,
                     ranges=ranges)
    fused = build(PRESETS["cpu-int8"], outlier_bert_onnx, tmp_path, bert)
    alone = smooth(outlier_bert_onnx, tmp_path / "s.onnx", SmoothConfig(), ranges)
    # The fusions keep the names of the inputs they leave to MatMuls: ranges measured on
    # the exported graph find every outlier activation in the fused one.
    assert smoothed.details["smoothed_activations"] == alone.details["smoothed_activations"]
    ops = op_histogram(smoothed.path)
    assert ops["QAttention"] == op_histogram(fused.path)["QAttention"] > 0, "fusion kept"
    assert not list(tmp_path.glob(".*smoothed*")) and not list(tmp_path.glob(".*fused*")), (
        "intermediate graphs removed")
    reference = run(outlier_bert_onnx, outlier_bert_feed)
    assert (min_cosine(run(smoothed.path, outlier_bert_feed), reference)
            > min_cosine(run(fused.path, outlier_bert_feed), reference))


def test_smooth_reaches_the_attention_input_of_a_fused_graph(
    outlier_bert_onnx: Path, outlier_bert_feed, ranges, tmp_path: Path
):
    import onnx

    from optimizers.fuse import fuse

    fused = fuse(outlier_bert_onnx, tmp_path / "f.onnx", FuseConfig(model_type="bert")).path
    # The activation the query, key and value projections share (a LayerNorm's output, where
    # pretrained models have their outlier channels), given an outlier channel here.
    readers = Counter(a for _, inputs in quantizable_nodes(outlier_bert_onnx, ("MatMul",))
                      .values() for a in inputs)
    in_fused = set(smoothable(fused))  # the first layer's input is renamed by its fusion
    shared = [a for a, count in readers.items() if count >= 3 and a in in_fused]
    assert shared, "query, key and value read one activation"
    spiked = dict(ranges)
    for name in shared:
        spiked[name] = ranges[name].copy()
        spiked[name][0] *= 100.0
    variant = smooth(fused, tmp_path / "s.onnx", SmoothConfig(), spiked)
    assert set(shared) <= set(variant.details["smoothed_activations"])
    attention = [n for n in onnx.load(str(variant.path)).graph.node if n.op_type == "Attention"]
    assert attention and all(n.input[0].endswith("/smoothed") for n in attention
                             if n.input[0].removesuffix("/smoothed") in shared)
    assert any(n.input[0].endswith("/smoothed") for n in attention)
    diff = np.abs(run(variant.path, outlier_bert_feed) - run(fused, outlier_bert_feed))
    assert diff.max() < 1e-4, "the packed query/key/value weight took the scale exactly"


def test_a_fused_smoothing_preset_asks_the_caller_for_the_fused_graphs_own_ranges(
    outlier_bert_onnx: Path, outlier_bert_feed, ranges, tmp_path: Path
):
    asked: list[tuple[str, ...]] = []

    def measure(graph: Path, tensors):
        asked.append(tuple(tensors))
        probe = Probe(graph, [outlier_bert_feed], outlier_bert_feed, threads=1)
        return probe.activation_ranges(list(tensors))

    build(PRESETS["cpu-int8-smooth"], outlier_bert_onnx, tmp_path, FuseConfig(model_type="bert"),
          ranges=ranges, measure=measure)
    assert len(asked) == 1 and asked[0], "the fused embedding LayerNorm's output, at least"
    assert not set(asked[0]) & set(ranges), "only what the export's ranges lack"


def test_smooth_leaves_even_activations_alone(outlier_bert_onnx: Path, ranges, tmp_path: Path):
    variant = smooth(outlier_bert_onnx, tmp_path / "s.onnx", SmoothConfig(min_spread=1e6),
                     ranges)
    assert variant.details["smoothed_activations"] == {}
    assert op_histogram(variant.path) == op_histogram(outlier_bert_onnx)


def test_smoothing_preset_takes_ranges_measured_by_the_caller(
    outlier_bert_onnx: Path, outlier_bert_feed, tmp_path: Path
):
    from convert_model.stages.preparation import activation_ranges

    ranges = activation_ranges(outlier_bert_onnx, [outlier_bert_feed])
    variant = build(PRESETS["cpu-int8-smooth"], outlier_bert_onnx, tmp_path, FuseConfig(),
                    [outlier_bert_feed], ranges=ranges)
    assert variant.details["smoothed_activations"]
    with pytest.raises(OptimizationError, match="needs the activation ranges"):
        build(PRESETS["cpu-int8-smooth"], outlier_bert_onnx, tmp_path, FuseConfig(),
              [outlier_bert_feed])


def test_smooth_config_and_preset_reject_bad_values():
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        SmoothConfig(alpha=1.0)
    with pytest.raises(ValueError, match="min_spread must be >= 1"):
        SmoothConfig(min_spread=0.5)
    with pytest.raises(ValueError, match="more than one precision pass"):
        Preset(name="x", description="x", device="cpu", precision="int8",
               smooth=SmoothConfig(), dynamic=DynamicQuantConfig(), nbits=NBitsConfig())
