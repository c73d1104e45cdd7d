"""The padding probe: padded inputs, the outputs' sequence axes, trimmed against untrimmed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.padding import compare_trimmed, probe, sequence_axes
from benchmarks.parity import ParityBudget, failures
from converters.onnx_graph import runner
from optimizers.trim_padding import TrimConfig, trim_padding
from tests.fixtures import padded_graphs

SEQUENCE = ("input_ids", "attention_mask")
FEED = {"input_ids": np.array([[3, 5, 2, 6, 7, 1], [4, 2, 7, 7, 7, 7]], np.int64),
        "attention_mask": np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]], np.int64)}


def _trim(src: Path, padded: tuple[str, ...] = ()) -> Path:
    dst = src.with_name("trimmed.onnx")
    trim_padding(src, dst, TrimConfig(mask="attention_mask", inputs=SEQUENCE,
                                      padded_outputs=padded))
    return dst


def test_probe_masks_the_last_third_with_the_pad_value_the_inputs_use():
    padded = probe(FEED, "attention_mask", SEQUENCE)
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]]
    assert padded["input_ids"][:, 4:].tolist() == [[7, 7], [7, 7]]  # row 1's pad id
    assert FEED["attention_mask"][0].all()  # the caller's inputs are left as they were


def test_sequence_axes_finds_the_axis_that_follows_the_length(tmp_path: Path):
    axes = sequence_axes(runner(padded_graphs.token_level(tmp_path / "t.onnx")), FEED, SEQUENCE)
    assert axes == {"tokens": (1,), "width": ()}


def test_compare_trimmed_passes_a_graph_that_ignores_padding(tmp_path: Path):
    src = padded_graphs.masked_mean(tmp_path / "m.onnx")
    records = compare_trimmed(runner(src), runner(_trim(src)),
                              [probe(FEED, "attention_mask", SEQUENCE)])
    assert records and failures(records, ParityBudget()) == []


def test_compare_trimmed_fails_a_graph_that_pools_over_padding(tmp_path: Path):
    src = padded_graphs.unmasked_mean(tmp_path / "u.onnx")
    records = compare_trimmed(runner(src), runner(_trim(src)),
                              [probe(FEED, "attention_mask", SEQUENCE)])
    breaches = failures(records, ParityBudget())
    assert breaches and "pooled" in breaches[0]
