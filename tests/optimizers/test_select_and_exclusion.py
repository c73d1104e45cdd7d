from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.node_error import node_errors
from optimizers.exclusion import quantizable_nodes
from optimizers.fuse import FuseConfig
from optimizers.presets import PRESETS, build
from optimizers.select import Measured, Paired, choose, clearly_faster
from tests.optimizers.conftest import min_cosine, run


def _m(name, p50, failures=(), device="cpu", precision="int8"):
    return Measured(name=name, precision=precision, device=device, failures=failures, cost=p50)


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
    assert "not clearly faster than fp32" in decision.reasons["cpu-int8"]


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
        Measured(name="fp32", precision="fp32", device="cpu", failures=(), cost=60.0,
                 task_metric=0.77),
        Measured(name="cpu-int8", precision="int8", device="cpu", failures=(), cost=24.15,
                 task_metric=0.765),
        Measured(name="cpu-int8-plain-per-tensor", precision="int8", device="cpu", failures=(),
                 cost=24.18, task_metric=0.770),
        Measured(name="cpu-int8-plain", precision="int8", device="cpu", failures=(),
                 cost=26.0, task_metric=0.771),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "cpu-int8-plain-per-tensor"
    reason = decision.reasons["cpu-int8-plain-per-tensor"]
    assert "tied on speed with cpu-int8" in reason and "within 3%" in reason
    assert "higher task metric (0.770000 vs 0.765000)" in reason
    assert "won on higher task metric" in decision.reasons["cpu-int8"]
    assert "slower than cpu-int8-plain-per-tensor" in decision.reasons["cpu-int8-plain"]


def _r(name, ratio, low, high, precision="int8", **figures):
    return Measured(name=name, precision=precision, device="cpu", failures=(), cost=ratio,
                    ratio=ratio, ratio_low=low, ratio_high=high, **figures)


def test_choose_with_equal_task_metric_falls_back_to_min_cosine_and_says_so():
    decision = choose([
        _r("fp32", 1.0, 0.98, 1.02, precision="fp32", task_metric=0.9, min_cosine=1.0),
        _r("cpu-int8", 0.40, 0.38, 0.43, task_metric=0.8, min_cosine=0.995),
        _r("cpu-int8-plain", 0.42, 0.41, 0.44, task_metric=0.8, min_cosine=0.998),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "cpu-int8-plain", "intervals overlap: a tie, cosine decides"
    reason = decision.reasons["cpu-int8-plain"]
    assert "equal task metric; higher min cosine (0.998000 vs 0.995000)" in reason
    assert "less accurate" not in decision.reasons["cpu-int8"]
    assert "won on equal task metric; higher min cosine" in decision.reasons["cpu-int8"]


def test_choose_falls_back_to_max_abs_diff_then_size():
    common = {"task_metric": None, "min_cosine": 0.999}
    decision = choose([
        _r("a", 0.5, 0.45, 0.55, max_abs_diff=0.02, size_bytes=10_000_000, **common),
        _r("b", 0.5, 0.45, 0.55, max_abs_diff=0.02, size_bytes=5_000_000, **common),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "b"
    assert "equal min cosine, max abs diff; smaller size (5.00 MB vs 10.00 MB)" in (
        decision.reasons["b"])


def test_choose_is_the_same_whichever_order_the_noise_puts_tied_variants_in():
    figures = {"a": {"min_cosine": 0.997}, "b": {"min_cosine": 0.999}}
    picks = set()
    for ratios in ((0.50, 0.51), (0.51, 0.50)):
        candidates = [_r(n, r, r - 0.02, r + 0.02, **figures[n])
                      for n, r in zip("ab", ratios, strict=True)]
        picks.add(choose(candidates, device="cpu", baseline="fp32").recommended)
    assert picks == {"b"}


def test_choose_keeps_fp32_when_no_variant_is_clearly_faster():
    decision = choose([
        _r("fp32", 1.0, 0.97, 1.03, precision="fp32", min_cosine=1.0),
        _r("cpu-int8", 0.95, 0.90, 0.99, min_cosine=0.995),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "fp32"
    assert "tied on speed with fp32" in decision.reasons["cpu-int8"]
    assert "fp32 won on higher min cosine (1.000000 vs 0.995000)" in decision.reasons["cpu-int8"]
    odd = choose([  # even a more accurate variant must be clearly faster than fp32
        _r("fp32", 1.0, 0.97, 1.03, precision="fp32", min_cosine=0.99),
        _r("cpu-int8", 0.95, 0.90, 0.99, min_cosine=0.995),
    ], device="cpu", baseline="fp32")
    assert odd.recommended == "fp32"
    assert "not clearly faster than fp32" in odd.reasons["cpu-int8"]
    assert odd.reasons["fp32"].startswith("recommended: no variant clearly faster than it")


def test_clearly_faster_needs_the_whole_interval_below_one_and_a_gain_past_the_tie():
    assert clearly_faster(Paired(0.90, 0.88, 0.92))
    assert not clearly_faster(Paired(0.90, 0.80, 1.01)), "interval reaches one"
    assert not clearly_faster(Paired(0.98, 0.975, 0.985)), "tight, but within the 3% tie"


def _paired(name, ratio, low, high, versus, **figures):
    return Measured(name=name, precision="fp32" if name == "fp32" else "int8", device="cpu",
                    failures=(), cost=ratio, ratio=ratio, ratio_low=low, ratio_high=high,
                    versus={k: Paired(*v) for k, v in versus.items()}, **figures)


def test_choose_compares_variants_by_their_ratio_to_each_other_paired_in_the_run():
    # Against the original the two intervals overlap (its noise is in both), but paired with
    # each other a is 8% faster every round: a wins on speed, not on a tie-break.
    candidates = [
        _paired("fp32", 1.0, 0.97, 1.03, {"a": (1.3, 1.28, 1.32), "b": (1.2, 1.18, 1.22)}),
        _paired("a", 0.77, 0.74, 0.80, {"fp32": (0.77, 0.76, 0.78), "b": (0.92, 0.91, 0.93)},
                min_cosine=0.995),
        _paired("b", 0.83, 0.79, 0.86, {"fp32": (0.83, 0.82, 0.84), "a": (1.09, 1.08, 1.10)},
                min_cosine=0.999),
    ]
    decision = choose(candidates, device="cpu", baseline="fp32")
    assert decision.recommended == "a"
    assert decision.reasons["a"].startswith("recommended: fastest within budget")
    assert "paired, 1.090 [1.080, 1.100] of a's time" in decision.reasons["b"]


def test_choose_keeps_fp32_when_the_paired_gain_is_within_the_tie():
    # Against the original the intervals do not overlap, yet paired with fp32 the variant is
    # only 2% faster: a tie, which fp32 wins (rule 6), whatever the noise did to the points.
    decision = choose([
        _paired("fp32", 1.0, 0.99, 1.01, {"cpu-int8": (1.02, 1.015, 1.025)}, min_cosine=1.0),
        _paired("cpu-int8", 0.96, 0.955, 0.965, {"fp32": (0.98, 0.975, 0.985)},
                min_cosine=0.995),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "fp32"
    assert "paired, 0.980 [0.975, 0.985] of fp32's time" in decision.reasons["cpu-int8"]


def test_a_tie_broken_past_the_printed_digits_shows_the_digits_that_differ():
    decision = choose([
        _r("fp32", 1.0, 0.98, 1.02, precision="fp32", min_cosine=0.99999998),
        _r("cpu-fp32", 0.99, 0.97, 1.01, precision="fp32", min_cosine=0.99999991),
    ], device="cpu", baseline="fp32")
    assert decision.recommended == "fp32"
    assert "higher min cosine (0.99999998 vs 0.99999991)" in decision.reasons["fp32"]
