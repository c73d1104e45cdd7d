"""The padding stage: a conversion cuts the padding only where the probe finds no change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from convert_model import convert
from tests.fixtures import padded_graphs


@pytest.mark.parametrize(("build", "reason"), [
    (padded_graphs.masked_mean, None),
    (padded_graphs.unmasked_mean, "the outputs change when the padded columns are cut (pooled"),
    # Its second output is the width the graph saw: cutting changes it.
    (padded_graphs.token_level, "the outputs change when the padded columns are cut (width"),
    (padded_graphs.float_mask, "not an integer or boolean mask"),
])
def test_conversion_cuts_padding_only_where_the_outputs_stay(
    build: Callable[[Path], Path], reason: str | None, tmp_path: Path
):
    source = build(tmp_path / "model.onnx")
    result = convert(source, out=tmp_path / "b", precision="fp32", sweep=None)
    assert result.passed
    padding = result.manifest.export["padding"]
    if reason is None:
        assert padding["trimmed"] and padding["inputs"] == ["input_ids", "attention_mask"]
        assert padding["probe"]["inputs"] >= 2
    else:
        assert not padding["trimmed"] and reason in padding["reason"], padding


def test_conversion_keeps_padding_when_the_probe_cannot_run(tmp_path: Path):
    """input_ids and the mask on differently named axes: only the mask would be cut."""
    import onnx

    source = padded_graphs.masked_mean(tmp_path / "model.onnx")
    model = onnx.load(str(source))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "other"
    onnx.save(model, str(source))
    result = convert(source, out=tmp_path / "b", precision="fp32", sweep=None)
    padding = result.manifest.export["padding"]
    assert padding["trimmed"] is False
    assert "does not run" in padding["reason"], padding
    assert result.passed and np.load(tmp_path / "b" / "sample_inputs.npz").files

