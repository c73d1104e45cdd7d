"""The loader registry: one loader per form, loud on a duplicate, a clear line for the unknown."""

from __future__ import annotations

import pytest

from convert_model.core.errors import CheckpointError, UsageError
from converters import registry
from converters.registry import LoadOptions, loader_for, register_loader
from converters.types import CheckpointForm


def test_registry_knows_a_loader_for_every_form():
    missing = []
    for form in CheckpointForm:
        try:
            loader_for(form)
        except CheckpointError:
            missing.append(form)
    assert missing == []


def test_registry_refuses_a_second_loader_for_a_form():
    with pytest.raises(ValueError, match="already registered"):
        register_loader(CheckpointForm.ONNX)(lambda path, form, options: None)  # type: ignore


def test_registry_unknown_form_is_a_checkpoint_error(monkeypatch):
    monkeypatch.setattr(registry, "_LOADERS", {})
    monkeypatch.setattr(registry, "_import_loaders", lambda: None)
    with pytest.raises(CheckpointError, match="not supported yet"):
        loader_for(CheckpointForm.ONNX)


def test_load_options_parse_the_input_spec_once_on_construction():
    options = LoadOptions(input_spec="x:float32[batch,4]=2x4")
    assert options.spec is not None and options.spec.names == ("x",)
    assert LoadOptions().spec is None
    with pytest.raises(UsageError):
        LoadOptions(input_spec="x:complex7[2]")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("model_kwargs", [1, 2], "--model-kwargs must be a JSON object"),
    ("notebook_timeout", 0, "--notebook-timeout must be a finite number of seconds"),
])
def test_load_options_name_the_bad_value(field: str, value: object, message: str):
    with pytest.raises(UsageError, match=message):
        LoadOptions(**{field: value})
