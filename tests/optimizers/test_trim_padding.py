"""The padding trim: where it cuts, what it keeps, and which graphs it refuses to read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converters.onnx_graph import runner
from optimizers.trim_padding import SequenceInputs, TrimConfig, sequence_inputs, trim_padding
from optimizers.types import op_histogram
from tests.fixtures import padded_graphs

IDS = np.array([[3, 5, 2, 0, 0, 0], [4, 0, 0, 0, 0, 0]], np.int64)
MASK = (IDS != 0).astype(np.int64)


def _trimmed(src: Path, padded_outputs: tuple[str, ...] = ()) -> Path:
    dst = src.with_name("trimmed.onnx")
    trim_padding(src, dst, TrimConfig(mask="attention_mask",
                                      inputs=("input_ids", "attention_mask"),
                                      padded_outputs=padded_outputs))
    return dst


def test_sequence_inputs_names_the_mask_and_the_inputs_sharing_its_axis(tmp_path: Path):
    found = sequence_inputs(padded_graphs.masked_mean(tmp_path / "m.onnx"))
    assert found == SequenceInputs(mask="attention_mask", inputs=("input_ids", "attention_mask"),
                                   axis="sequence")


@pytest.mark.parametrize(("build", "reason"), [
    (padded_graphs.float_mask, "not an integer or boolean mask"),
    (padded_graphs.fixed_length, "sequence axis is fixed (6)"),
])
def test_sequence_inputs_says_why_a_graph_cannot_be_cut(build, reason: str, tmp_path: Path):
    found = sequence_inputs(build(tmp_path / "m.onnx"))
    assert isinstance(found, str) and reason in found


@pytest.mark.parametrize(("mask", "width"), [
    ([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], 2),  # the longest row decides
    ([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]], 4),  # a hole inside the real tokens is kept
    ([[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]], 6),  # left padding: nothing to cut
    ([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], 1),  # no real token: one column stays
    ([[1, 1, -1, 0, 0, 0], [2, 0, 0, 0, 0, 0]], 3),  # any nonzero value is a real token
])
def test_trim_cuts_after_the_last_column_any_row_has_real(mask, width: int, tmp_path: Path):
    trimmed = _trimmed(padded_graphs.token_level(tmp_path / "t.onnx"), ("tokens",))
    out = runner(trimmed)({"input_ids": IDS, "attention_mask": np.array(mask, np.int64)})
    assert out["width"].tolist() == [2, width]
    assert out["tokens"].shape == (2, 6, 4)  # padded back to the input's length


def test_trim_pads_token_outputs_back_with_zeros_and_keeps_real_positions(tmp_path: Path):
    src = padded_graphs.token_level(tmp_path / "t.onnx")
    feed = {"input_ids": IDS, "attention_mask": MASK}
    before, after = runner(src)(feed), runner(_trimmed(src, ("tokens",)))(feed)
    real = MASK.astype(bool)
    np.testing.assert_array_equal(after["tokens"][real], before["tokens"][real])
    assert not after["tokens"][:, 3:].any()
    assert op_histogram(_trimmed(src, ("tokens",)))["Pad"] == 1


def test_trim_keeps_a_pooled_output_exactly_and_leaves_the_source_alone(tmp_path: Path):
    src = padded_graphs.masked_mean(tmp_path / "m.onnx")
    original = src.read_bytes()
    feed = {"input_ids": IDS, "attention_mask": MASK}
    np.testing.assert_allclose(runner(_trimmed(src))(feed)["pooled"], runner(src)(feed)["pooled"],
                               rtol=1e-6)
    assert src.read_bytes() == original


def test_sequence_inputs_leaves_a_graph_that_already_cuts_its_padding(tmp_path: Path):
    trimmed = _trimmed(padded_graphs.masked_mean(tmp_path / "m.onnx"))
    assert sequence_inputs(trimmed) == "the graph already cuts its padding (a bundle's model.onnx)"


def test_trim_config_requires_the_mask_among_the_cut_inputs():
    with pytest.raises(ValueError, match="must be one of the cut inputs"):
        TrimConfig(mask="attention_mask", inputs=("input_ids",))
