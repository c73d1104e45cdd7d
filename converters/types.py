"""The data that passes between the converter stages, as small frozen dataclasses."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Inputs = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]


class CheckpointForm(str, enum.Enum):
    """The forms of checkpoint a researcher hands over (DESIGN.md, 'Forms of checkpoint')."""

    HF_MODEL = "hf-model"
    HF_TRAINER_CHECKPOINT = "hf-trainer-checkpoint"
    STATE_DICT = "state-dict"
    TORCH_EXPORT = "torch-export"
    TORCHSCRIPT = "torchscript"
    NOTEBOOK = "notebook"
    PICKLE = "pickle"
    ONNX = "onnx"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"
    SKOPS = "skops"
    CATBOOST = "catboost"
    FASTTEXT = "fasttext"
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    KERAS = "keras"
    KERAS_H5 = "keras-h5"
    TF_SAVEDMODEL = "tf-savedmodel"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    """A named tensor's dtype and dims; a str dim is a dynamic axis, an int a fixed size."""

    name: str
    dtype: str
    dims: tuple[int | str, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form: name, dtype, shape with axis names, dynamic axes."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.dims),
            "dynamic_axes": {str(i): d for i, d in enumerate(self.dims) if isinstance(d, str)},
        }


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    """A checkpoint loaded into memory, ready to export and to run as the original.

    Attributes:
        source: the checkpoint path as given.
        form: the recognised form.
        module: the torch callable to export (None for an ``.onnx`` source).
        input_names: graph input names, in the order the module takes them positionally.
        output_names: graph output names, in the order the module returns them.
        dynamic_axes: per input, axis index to axis name; also used for the outputs' names.
        examples: input sets at two or more shapes, used for export, parity and the bundle.
        run: runs the original on one input set and returns outputs by name.
        task: the task (HF tasks), or None.
        model_type: the HF ``model_type``, or the class name for plain modules.
        files_to_copy: tokenizer/config files that go into the bundle.
        hashed_files: the files whose bytes identify the source (weights, config, tokenizer).
        framework: what runs the original: torch, onnx, xgboost, lightgbm, sklearn,
            catboost or fasttext.
        input_schema: for tabular models, feature names in order and the missing-value
            convention; for models whose graph takes preprocessed input (fastText,
            sentence-transformers), the preprocessing the bundle needs; None otherwise.
        hf_model: the transformers model, for exporters that want it (optimum), else None.
        onnx_config: optimum's OnnxConfig for ``hf_model``, when optimum knows the architecture.
        notes: facts worth recording in the manifest (ignored files, unexpected keys).
        encode: for models whose graph takes preprocessed text (fastText), turns raw texts
            into one input set, so an eval set can be given as text; None otherwise.
    """

    source: Path
    form: CheckpointForm
    module: Any
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    examples: tuple[Inputs, ...]
    run: Callable[[Inputs], Outputs]
    task: str | None = None
    model_type: str | None = None
    files_to_copy: tuple[Path, ...] = ()
    hashed_files: tuple[Path, ...] = ()
    framework: str = "torch"
    input_schema: Mapping[str, Any] | None = None
    hf_model: Any = None
    onnx_config: Any = None
    notes: tuple[str, ...] = field(default=())
    encode: Callable[[Sequence[str]], Inputs] | None = None


@dataclass(frozen=True, kw_only=True)
class ExportAttempt:
    """One export strategy's outcome: success, or why it failed or did not apply."""

    strategy: str
    success: bool
    skipped: bool = False
    error: str | None = None
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()  # e.g. the tracer's, with file:line

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "strategy": self.strategy,
            "success": self.success,
            "skipped": self.skipped,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, kw_only=True)
class ExportedGraph:
    """An fp32 ONNX file with its signature and how it was produced."""

    path: Path
    strategy: str
    attempts: tuple[ExportAttempt, ...]
    opset: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    external_data: bool
    # Whether trailing padding is cut inside the graph, and the measurement that allowed it.
    padding: Mapping[str, Any] | None = None
