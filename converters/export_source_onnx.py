"""Export strategy 0: the source is already an ONNX graph; take it as the fp32 graph."""

from __future__ import annotations

from pathlib import Path

from converters.export_strategy import ExportConfig, ExportStrategy
from converters.types import LoadedModel


def _applies(loaded: LoadedModel) -> str | None:
    return None if loaded.framework == "onnx" else "the source is not ONNX"


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> None:
    import onnx

    # Loading pulls in external data next to the source; saving writes one self-contained file
    # (the chain moves weights out again when the graph is over the external-data threshold).
    onnx.save_model(onnx.load(str(loaded.source)), str(path))


SOURCE_ONNX = ExportStrategy(name="source-onnx", applies=_applies, export=_export)
