from __future__ import annotations

import numpy as np
import pytest

from benchmarks.parity import (
    DEFAULT_BUDGETS,
    ParityBudget,
    compare,
    compare_output,
    failures,
    require_finite_original,
)
from convert_model.core.errors import CheckpointError, ParityError


def test_compare_identical_outputs_are_exact():
    logits = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    (record,) = compare({"logits": logits}, {"logits": logits.copy()})
    assert record.max_abs_diff == 0 and record.min_cosine == pytest.approx(1.0)
    assert record.top1_agreement == 1.0 and failures([record], ParityBudget()) == []


def test_compare_measures_abs_rel_cosine_and_top1():
    ref = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    cand = np.array([[1.0, 2.0, 3.5], [3.0, 4.0, 1.0]], dtype=np.float32)
    record = compare_output("logits", 0, ref, cand)
    assert record.max_abs_diff == pytest.approx(2.0)
    assert record.max_rel_diff == pytest.approx(1.0)
    assert record.top1_agreement == 0.5
    expected = (ref[1] @ cand[1]) / (np.linalg.norm(ref[1]) * np.linalg.norm(cand[1]))
    assert record.min_cosine == pytest.approx(expected, rel=1e-6)


def test_failures_lists_every_failing_output():
    ref = {"a": np.ones((2, 4), np.float32), "b_logits": np.eye(2, dtype=np.float32)}
    cand = {"a": np.ones((2, 4), np.float32) * 1.01, "b_logits": np.eye(2, dtype=np.float32)[::-1]}
    lines = failures(compare(ref, cand), ParityBudget())
    assert any(line.startswith("a (check 0") and "max abs diff" in line for line in lines)
    assert any(line.startswith("b_logits") and "top-1 agreement" in line for line in lines)
    assert any(line.startswith("b_logits") and "min cosine" in line for line in lines)


def test_compare_output_count_mismatch_is_an_error():
    with pytest.raises(ParityError, match="outputs differ") as info:
        compare({"a": np.zeros(2), "b": np.zeros(2)}, {"a": np.zeros(2)})
    assert info.value.failures == ("missing output b",)


def test_compare_shape_mismatch_fails_the_budget():
    record = compare_output("x", 0, np.zeros((2, 3)), np.zeros((3, 2)))
    assert not record.shape_match
    assert failures([record], ParityBudget()) == [
        "x (check 0, shape [2, 3]): candidate shape differs"
    ]


def test_compare_nan_where_reference_has_none_fails():
    ref = np.ones((1, 3), np.float32)
    cand = ref.copy()
    cand[0, 1] = np.nan
    record = compare_output("x", 0, ref, cand)
    assert record.max_abs_diff == float("inf") and failures([record], ParityBudget())


def test_compare_matching_nans_never_agree():
    ref = np.array([[np.nan, 1.0]], np.float32)
    record = compare_output("x", 0, ref, ref.copy())
    assert record.max_abs_diff == float("inf") and record.nonfinite == 1
    assert any("NaN/Inf" in line for line in failures([record], DEFAULT_BUDGETS["int8"]))


def test_compare_inf_in_a_variant_fails_an_int8_budget_without_an_abs_limit():
    ref = np.ones((2, 4), np.float32)
    cand = ref.copy()
    cand[1, 2] = np.inf
    lines = failures(compare({"x": ref}, {"x": cand}), DEFAULT_BUDGETS["int8"])
    assert lines == ["x (check 0, shape [2, 4]): 1 NaN/Inf value(s) in the candidate"]


def test_compare_zero_vector_cosine_is_undefined_not_one():
    ref = np.zeros((2, 3), np.float32)
    record = compare_output("hidden", 0, ref, ref.copy())
    assert record.min_cosine is None and record.cosine_undefined == 2
    assert failures([record], DEFAULT_BUDGETS["int8"]) == [
        "hidden (check 0, shape [2, 3]): cosine undefined on 2 row(s) (a zero vector)"
    ]


def test_require_finite_original_names_the_output():
    outputs = {"pooled": np.ones((2, 3), np.float32),
               "logits": np.full((2, 3), np.nan, np.float32)}
    with pytest.raises(CheckpointError, match="output 'logits' holds NaN/Inf \\(6 of 6"):
        require_finite_original([outputs], "model.safetensors")
    require_finite_original([{"ids": np.array([1, 2])}], "ok")  # integers are always finite


def test_compare_classifier_output_gets_top1_and_top5_whatever_its_name():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((8, 10)).astype(np.float32)
    cand = ref.copy()
    cand[0, ref[0].argmax()] -= 100.0  # row 0's winner drops out of the top 5
    record = compare_output("output_0", 0, ref, cand)
    assert record.top1_agreement == pytest.approx(7 / 8)
    assert record.top5_agreement == pytest.approx(7 / 8)
    assert not record.class_scores, "measured, but gated only for outputs named as scores"


def test_compare_integer_outputs_have_no_cosine():
    record = compare_output("ids", 0, np.array([1, 2, 3]), np.array([1, 2, 4]))
    assert record.min_cosine is None and record.max_abs_diff == 1


def test_parity_budget_validates_ranges():
    with pytest.raises(ValueError, match="min_cosine must be in"):
        ParityBudget(min_cosine=2.0)
    with pytest.raises(ValueError, match="max_abs_diff must be >= 0"):
        ParityBudget(max_abs_diff=-1)
    with pytest.raises(TypeError):
        ParityBudget(atol=1e-3)  # kw_only config: a misspelt field raises


def test_parity_budget_none_switches_a_limit_off():
    record = compare_output("x", 0, np.ones((1, 2)), np.ones((1, 2)) * 2)
    assert failures([record], ParityBudget(max_abs_diff=None, min_cosine=None)) == []


def test_compare_one_value_per_row_uses_the_column_cosine():
    ref = np.array([[1.0], [2.0], [3.0]], np.float32)
    cand = np.array([[3.0], [2.0], [1.0]], np.float32)
    record = compare_output("score", 0, ref, cand)
    assert record.min_cosine == pytest.approx(10 / 14), "not 1.0: per-row signs all agree"
