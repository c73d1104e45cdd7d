"""The export chain: strategies in order, skipped or failed ones recorded, the graph checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from convert_model.core.errors import ExportError
from converters.export import STRATEGY_NAMES, ExportConfig, export, strategies
from converters.registry import LoadOptions
from converters.state_dict import load_state_dict
from converters.types import CheckpointForm
from tests.fixtures.models import CUSTOM_SPEC, Zoo


def _custom(model_zoo: Zoo):
    options = LoadOptions(input_spec=CUSTOM_SPEC, model_class=f"{model_zoo.model_file}:TinyTagger")
    return load_state_dict(model_zoo.custom_safetensors, CheckpointForm.STATE_DICT, options)


def test_export_strategies_are_tried_in_the_named_order():
    assert tuple(s.name for s in strategies()) == STRATEGY_NAMES


def test_export_records_every_attempt_and_the_one_that_worked(model_zoo: Zoo, tmp_path: Path):
    graph = export(_custom(model_zoo), tmp_path, ExportConfig())
    assert graph.strategy == "dynamo" and graph.path == tmp_path / "model.onnx"
    by_name = {a.strategy: a for a in graph.attempts}
    assert by_name["source-onnx"].skipped and by_name["optimum"].skipped
    assert by_name["dynamo"].success and "torchscript" not in by_name
    assert [t.name for t in graph.inputs] == ["features", "mask"]
    assert graph.inputs[0].dims[0] == "batch", "the batch axis stays dynamic"


def test_export_restricted_to_one_strategy_records_the_others_as_not_selected(
    model_zoo: Zoo, tmp_path: Path
):
    graph = export(_custom(model_zoo), tmp_path, ExportConfig(strategies=("torchscript",)))
    assert graph.strategy == "torchscript"
    assert {a.error for a in graph.attempts if a.skipped and a.strategy == "dynamo"} == {
        "not selected"
    }


def test_export_fails_with_every_reason_when_no_strategy_applies(model_zoo: Zoo, tmp_path: Path):
    with pytest.raises(ExportError, match="no export strategy succeeded.*optimum"):
        export(_custom(model_zoo), tmp_path, ExportConfig(strategies=("optimum",)))
    assert not list(tmp_path.glob("model.onnx*")), "no half-written graph is left"


def test_export_config_names_the_bad_value():
    with pytest.raises(ValueError, match="unknown export strategies"):
        ExportConfig(strategies=("magic",))
    with pytest.raises(ValueError, match="opset must be in 14..23"):
        ExportConfig(opset=7)
