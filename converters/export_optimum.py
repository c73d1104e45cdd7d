"""Export strategy 1: optimum-onnx's exporter, for the transformers architectures it knows."""

from __future__ import annotations

from pathlib import Path

from converters.export_strategy import ExportConfig, ExportStrategy
from converters.types import LoadedModel


def _applies(loaded: LoadedModel) -> str | None:
    if loaded.hf_model is None:
        return "not a transformers model"
    if loaded.onnx_config is None:
        return f"optimum-onnx has no ONNX config for model_type {loaded.model_type!r}"
    if tuple(loaded.onnx_config.inputs) != loaded.input_names:
        return "--input-spec overrides the inputs optimum-onnx would use"
    return None


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> None:
    from optimum.exporters.onnx.convert import export

    export(
        loaded.hf_model,
        loaded.onnx_config,
        path,
        opset=config.opset,
        device="cpu",
        no_dynamic_axes=not config.dynamic,
    )


OPTIMUM = ExportStrategy(name="optimum", applies=_applies, export=_export)
