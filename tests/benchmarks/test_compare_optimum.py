"""The Optimum comparison's accuracy-budgeted view, on rows made up for it."""

from __future__ import annotations

import numpy as np

from benchmarks.compare_optimum import Row, _keeps_budget, budgeted, markdown, sentence_embeddings


def _row(pipeline: str, name: str, p50: float, ok: bool) -> Row:
    return Row(pipeline=pipeline, name=name, p50_ms=p50, speedup=10.0 / p50, min_cosine=0.99,
               sentence_cosine=0.995 if ok else 0.9, max_abs_diff=0.1, task_metric=None,
               within_budget=ok)


def test_sentence_embeddings_average_only_the_unmasked_tokens():
    hidden = np.array([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]])
    mask = np.array([[1, 1, 0]])
    assert np.allclose(sentence_embeddings(hidden, mask), [[2.0, 1.0]])


def test_keeps_budget_by_sentence_cosine_else_by_metric_within_one_point():
    assert _keeps_budget(0.991, None, None) and not _keeps_budget(0.989, 0.9, 0.9)
    assert _keeps_budget(None, 0.805, 0.81) and not _keeps_budget(None, 0.79, 0.81)
    assert not _keeps_budget(None, None, None)


def test_budgeted_takes_each_pipelines_fastest_variant_within_budget():
    rows = [_row("PyTorch", "eager", 10.0, True), _row("Optimum", "int8", 3.0, False),
            _row("Optimum", "O2", 6.0, True), _row("convert-model", "mixed", 4.0, True),
            _row("convert-model", "per-tensor", 2.0, False)]
    best = budgeted(rows)
    assert {k: v.name if v else None for k, v in best.items()} == {
        "PyTorch": "eager", "Optimum": "O2", "convert-model": "mixed"}
    table = markdown(rows)
    assert "| Optimum | O2 | 6.00 | 1.67× |" in table
    assert "1.50× as fast as Optimum's" in table
    assert budgeted([_row("Optimum", "int8", 3.0, False)]) == {"Optimum": None}


def test_conversion_cost_reads_each_stage_from_the_progress_lines():
    from benchmarks.conversion_cost import stage_seconds

    log = ("[1/6] load …\n      done in 1.5s\n[2/6] export to ONNX …\n      note\n"
           "      done in 12.0s\n")
    assert stage_seconds(log) == {"load": 1.5, "export to ONNX": 12.0}


def test_timed_feed_fills_every_position_or_pads_like_a_client():
    from benchmarks.compare_optimum import timed_feed

    inputs = {"input_ids": np.array([[101, 7, 8, 102, 0, 0]]),
              "attention_mask": np.array([[1, 1, 1, 1, 0, 0]])}
    full = timed_feed(inputs, 10, "full")
    assert full["attention_mask"].tolist() == [[1] * 10]
    assert full["input_ids"].tolist() == [[101, 7, 8, 102] * 2 + [101, 7]]
    padded = timed_feed(inputs, 10, "padded")
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 1] + [0] * 6]
    assert padded["input_ids"].tolist() == [[101, 7, 8, 102] + [0] * 6]
    assert timed_feed(inputs, 3, "padded")["input_ids"].tolist() == [[101, 7, 8]]
