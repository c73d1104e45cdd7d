"""What an export strategy is, and the configuration every strategy reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from converters.types import LoadedModel

TWO_GB = 2 * 1024**3
STRATEGY_NAMES = ("source-onnx", "onnxmltools", "catboost", "fasttext", "optimum", "dynamo",
                  "torchscript")
"""The export chain's strategies, in the order they are tried."""


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """How to export: opset, dynamic axes, which strategies, when to use external data."""

    opset: int = 18
    dynamic: bool = True
    strategies: tuple[str, ...] | None = None
    external_data_threshold: int = TWO_GB
    # Cut trailing padding inside the graph where the outputs are measured not to need it.
    trim_padding: bool = True

    def __post_init__(self) -> None:
        if not 14 <= self.opset <= 23:
            raise ValueError(f"opset must be in 14..23, got {self.opset}")
        if self.strategies is not None:
            unknown = sorted(set(self.strategies) - set(STRATEGY_NAMES))
            if unknown:
                raise ValueError(
                    f"unknown export strategies {unknown}; allowed: {', '.join(STRATEGY_NAMES)}"
                )


@dataclass(frozen=True, kw_only=True)
class ExportStrategy:
    """A named way to export: ``applies`` gives a reason it does not apply, or None."""

    name: str
    applies: Callable[[LoadedModel], str | None]
    # Returns the exporter's warnings worth keeping (file:line: message), or None.
    export: Callable[[LoadedModel, Path, ExportConfig], tuple[str, ...] | None]
