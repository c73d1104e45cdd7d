"""The registry of reference models: lookup, registration, validation, options, cache location."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import reference_models
from reference_models import FORMS, ReferenceModel, ReferenceModelError, Registry

EXPECTED = (
    "article-descriptions",
    "articlequality",
    "logo-detection",
    "outlink-topic",
    "outlink-topic-fasttext",
    "readability",
    "revertrisk-catboost",
    "revertrisk-language-agnostic",
    "revertrisk-multilingual",
    "sentence-outliers",
)


def _noop_builder(folder: Path, progress: reference_models.Progress) -> None:
    progress(f"nothing to build in {folder}")


def _model(**overrides: object) -> ReferenceModel:
    fields: dict[str, object] = {
        "name": "toy-model",
        "summary": "a toy",
        "form": "state-dict",
        "version": "1",
        "checkpoint": "toy.safetensors",
        "convert_options": {"model_class": "toy.py:Toy"},
        "metric": "accuracy",
        "metric_output": "logits",
        "chance": 0.5,
        "builder": _noop_builder,
    }
    fields.update(overrides)
    return ReferenceModel(**fields)  # type: ignore[arg-type]


def test_names_lists_the_eight_reference_models() -> None:
    assert reference_models.names() == EXPECTED


def test_get_raises_listing_known_names_when_name_unknown() -> None:
    with pytest.raises(
        ReferenceModelError, match="unknown reference model 'no-such-model'"
    ) as error:
        reference_models.get("no-such-model")
    assert isinstance(error.value, ValueError)
    for name in EXPECTED:
        assert name in str(error.value)


def test_register_raises_when_name_already_registered() -> None:
    existing = reference_models.get("outlink-topic")
    with pytest.raises(ReferenceModelError, match="'outlink-topic' is already registered"):
        reference_models.register(existing)
    assert reference_models.get("outlink-topic") is existing


def test_registry_register_raises_when_name_registered_twice_with_different_models() -> None:
    registry = Registry()
    first = registry.register(_model())
    with pytest.raises(ReferenceModelError, match="already registered"):
        registry.register(_model(summary="another toy"))
    assert registry.get("toy-model") is first
    assert registry.names() == ("toy-model",)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("form", "pickle", "form must be one of"),
        ("metric", "bleu", "unknown metric 'bleu'"),
        ("name", "Toy Model", "lower-case words"),
        ("checkpoint", "/abs/model", "inside the built folder"),
        ("checkpoint", "../model", "inside the built folder"),
        ("version", "", "version must be"),
        ("summary", "two\nlines", "one non-empty line"),
        ("convert_options", {"--task": "x"}, "without dashes"),
    ],
)
def test_reference_model_raises_naming_the_bad_value_when_a_field_is_invalid(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ReferenceModelError, match=message):
        _model(**{field: value})


def test_reference_model_freezes_convert_options() -> None:
    options = {"task": "text-classification"}
    model = _model(convert_options=options)
    options["task"] = "changed"
    assert model.convert_options["task"] == "text-classification"
    with pytest.raises(TypeError):
        model.convert_options["task"] = "changed"  # type: ignore[index]


def test_every_registered_model_has_a_known_form_and_a_version() -> None:
    for name in reference_models.names():
        model = reference_models.get(name)
        assert model.form in FORMS
        assert model.folder_name == f"{name}-{model.version}"


def test_absolute_options_makes_paths_of_built_files_absolute(tmp_path: Path) -> None:
    (tmp_path / "toy.py").write_text("class Toy: ...\n")
    (tmp_path / "eval.npz").write_bytes(b"")
    model = _model(
        convert_options={
            "model_class": "toy.py:Toy",
            "sample_data": "eval.npz",
            "task": "text-classification",
            "other": "missing.py:X",
        }
    )
    options = model.absolute_options(tmp_path)
    assert options == {
        "model_class": f"{tmp_path / 'toy.py'}:Toy",
        "sample_data": str(tmp_path / "eval.npz"),
        "task": "text-classification",
        "other": "missing.py:X",
    }


def test_cache_root_uses_convert_model_cache_when_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONVERT_MODEL_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert reference_models.cache_root() == tmp_path / "explicit"


def test_cache_root_uses_xdg_cache_home_when_no_explicit_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONVERT_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert reference_models.cache_root() == tmp_path / "xdg" / "convert-model"


def test_cache_root_defaults_to_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONVERT_MODEL_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert reference_models.cache_root() == tmp_path / ".cache" / "convert-model"


def test_replace_revalidates_a_reference_model() -> None:
    with pytest.raises(ReferenceModelError, match="form must be one of"):
        replace(_model(), form="onnx")
