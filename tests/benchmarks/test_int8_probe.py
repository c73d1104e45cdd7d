"""The int8 search's measurements: weight spread, masked node errors, screen, paired timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.int8_probe import Probe, weight_spread
from benchmarks.latency import LatencyConfig
from benchmarks.node_error import relative_error
from optimizers.exclusion import quantizable_nodes
from optimizers.quantize_dynamic import DynamicQuantConfig, quantize_dynamic


def _two_matmuls(path: Path) -> Path:
    """x (b, s, 4) @ W1 (4x3, output channel 0 is 20x the others) @ W2 (3x2, even)."""
    w1 = np.full((4, 3), 0.5, np.float32)
    w1[:, 0] = 10.0
    w2 = np.full((3, 2), 0.25, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
         helper.make_node("MatMul", ["h", "w2"], ["y"], name="second")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 2])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_weight_spread_is_widest_over_narrowest_output_channel_range(tmp_path: Path):
    path = _two_matmuls(tmp_path / "m.onnx")
    spread = weight_spread(path, ["first", "second"])
    assert spread == {"first": 20.0, "second": 1.0}


def test_relative_error_leaves_masked_positions_out():
    reference = [np.ones((1, 3, 2))]
    candidate = [np.ones((1, 3, 2))]
    candidate[0][0, 2] = 100.0  # a padded position
    mask = [np.array([[1.0, 1.0, 0.0]])]
    assert relative_error(reference, candidate, mask) == 0.0
    assert relative_error(reference, candidate) > 1.0


def test_probe_screens_ranks_and_times_against_fp32(tmp_path: Path):
    path = _two_matmuls(tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 5, 4)).astype(np.float32)} for _ in range(3)]
    probe = Probe(path, feeds, feeds[0], threads=1,
                  latency=LatencyConfig(warmup=1, rounds=3))
    same = probe.screen(probe.runner(path))
    assert len(same) == 3 and all(r.max_abs_diff == 0.0 for r in same)
    quantized = quantize_dynamic(path, tmp_path / "q.onnx",
                                 DynamicQuantConfig(per_channel=False)).path
    errors = probe.sensitivity(quantized, quantizable_nodes(path, ("MatMul",)))
    assert {e.node for e in errors} == {"first", "second"}
    assert all(e.output_error > 0 for e in errors)
    timing = probe.paired_latency(probe.runner(quantized))
    assert timing.p50_ms > 0 and timing.fp32_p50_ms > 0 and timing.vs_rival is None
    assert timing.vs_fp32.low <= timing.vs_fp32.ratio <= timing.vs_fp32.high
    same_rounds = probe.paired_latency(probe.runner(quantized), rival=probe.runner(path))
    assert same_rounds.vs_rival is not None and same_rounds.vs_rival.rounds == (
        same_rounds.vs_fp32.rounds), "candidate, fp32 and rival timed in the same rounds"
