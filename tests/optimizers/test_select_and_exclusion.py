from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.node_error import node_errors
from optimizers.exclusion import quantizable_nodes
from optimizers.fuse import FuseConfig
from optimizers.presets import PRESETS, build
from optimizers.select import Measured, choose
from tests.optimizers.conftest import min_cosine, run


def _m(name, p50, failures=(), device="cpu", precision="int8"):
    return Measured(name=name, precision=precision, device=device, failures=failures, p50_ms=p50)


def test_choose_fastest_within_budget():
    decision = choose(
        [
            _m("fp32", 10.0, precision="fp32"),
            _m("cpu-fp32", 8.0, precision="fp32"),
            _m("cpu-int8", 4.0),
            _m("cpu-int8-static", 3.0, failures=("cos 0.9",)),
        ],
        device="cpu",
        baseline="fp32",
    )
    assert decision.recommended == "cpu-int8"
    assert decision.reasons["cpu-int8-static"].startswith("outside the accuracy budget: cos 0.9")
    assert "slower than cpu-int8" in decision.reasons["cpu-fp32"]


def test_choose_never_recommends_a_variant_slower_than_fp32():
    decision = choose(
        [_m("fp32", 5.0, precision="fp32"), _m("cpu-int8", 6.0)], device="cpu", baseline="fp32"
    )
    assert decision.recommended == "fp32"
    assert "not faster than fp32" in decision.reasons["cpu-int8"]


def test_choose_skips_other_devices_and_reports_nothing_eligible():
    decision = choose(
        [
            _m("gpu-fp16", 1.0, device="cuda", precision="fp16"),
            _m("cpu-int8", 2.0, failures=("x",)),
        ],
        device="cpu",
        baseline="fp32",
    )
    assert decision.recommended is None
    assert decision.reasons["gpu-fp16"] == "built for cuda; not eligible on cpu"


def test_exclusion_restores_budget_that_plain_int8_misses(outlier_onnx: Path, tmp_path: Path):
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((32, 32)).astype(np.float32)}]
    check = {"x": rng.standard_normal((64, 32)).astype(np.float32)}
    reference = run(outlier_onnx, check)
    plain = build(PRESETS["cpu-int8"], outlier_onnx, tmp_path, FuseConfig())
    assert min_cosine(run(plain.path, check), reference) < 0.99, "plain int8 misses the budget"

    nodes = quantizable_nodes(outlier_onnx, ("MatMul",))
    assert set(nodes) == {"/MatMul", "/MatMul_1", "/MatMul_2"}
    ranking = node_errors(outlier_onnx, plain.path, nodes, feeds)
    assert ranking[0].node == "/MatMul_1", "the MatMul fed by the outlier activation is worst"
    assert ranking[0].own_error > 10 * ranking[-1].own_error

    kept = build(PRESETS["cpu-int8"], outlier_onnx, tmp_path, FuseConfig(),
                 nodes_to_exclude=(ranking[0].node,), name="cpu-int8-mixed")
    assert min_cosine(run(kept.path, check), reference) >= 0.99


def test_choose_breaks_a_timing_tie_by_accuracy():
    decision = choose([
        Measured(name="fp32", precision="fp32", device="cpu", failures=(), p50_ms=60.0,
                 accuracy=0.77),
        Measured(name="cpu-int8", precision="int8", device="cpu", failures=(), p50_ms=24.15,
                 accuracy=0.765),
        Measured(name="cpu-int8-plain-per-tensor", precision="int8", device="cpu", failures=(),
                 p50_ms=24.18, accuracy=0.770),
        Measured(name="cpu-int8-plain", precision="int8", device="cpu", failures=(),
                 p50_ms=26.0, accuracy=0.771),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "cpu-int8-plain-per-tensor"
    assert "within 3%" in decision.reasons["cpu-int8-plain-per-tensor"]
    assert "less accurate" in decision.reasons["cpu-int8"]
    assert "slower than cpu-int8-plain-per-tensor" in decision.reasons["cpu-int8-plain"]
