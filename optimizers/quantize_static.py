"""Static int8 in QDQ form, calibrated on sample data: the right default for CNNs.

Rules:
- Activation ranges come from running the fp32 graph on calibration inputs; the method is
  MinMax (the range seen), Entropy (KL-optimal clipping) or Percentile (clip the tails).
- QuantizeLinear/DequantizeLinear pairs wrap each quantized op; onnxruntime fuses them into
  integer kernels at load time. Weights int8, per channel by default.
- Activations default to uint8 (U8S8), the fast x86 kernel; int8 activations are selectable.
- The graph is shape-inferred first (onnxruntime's quantization pre-processing), without
  its own graph optimisation, so the input may already be fused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert_model.core.errors import OptimizationError
from convert_model.core.quiet import quiet
from optimizers.scratch import scratch_cwd
from optimizers.types import Variant, op_histogram

METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("quint8", "qint8")


@dataclass(frozen=True, kw_only=True)
class StaticQuantConfig:
    """Static (QDQ) quantization settings."""

    method: str = "minmax"
    per_channel: bool = True
    activation_type: str = "quint8"
    op_types: tuple[str, ...] | None = None
    nodes_to_exclude: tuple[str, ...] = ()
    max_calibration_samples: int = 64

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.activation_type not in ACTIVATION_TYPES:
            raise ValueError(
                f"activation_type must be one of {ACTIVATION_TYPES}, got {self.activation_type!r}"
            )
        if self.max_calibration_samples < 1:
            raise ValueError(
                f"max_calibration_samples must be >= 1, got {self.max_calibration_samples}"
            )


def split_rows(
    batches: Sequence[Mapping[str, np.ndarray]], limit: int
) -> list[dict[str, np.ndarray]]:
    """Calibration feeds of batch 1, at most ``limit``, taken row by row from ``batches``."""
    rows: list[dict[str, np.ndarray]] = []
    for batch in batches:
        count = len(next(iter(batch.values())))
        for i in range(count):
            if len(rows) == limit:
                return rows
            rows.append({k: v[i : i + 1] for k, v in batch.items()})
    return rows


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._iter: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def quantize_static(
    src: Path,
    dst: Path,
    config: StaticQuantConfig,
    calibration: Sequence[Mapping[str, np.ndarray]],
    name: str = "int8-static",
) -> Variant:
    """Write a QDQ-quantized copy of ``src`` to ``dst``, calibrated on ``calibration`` batches."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = split_rows(calibration, config.max_calibration_samples)
    if not feeds:
        raise OptimizationError("static quantization needs calibration data; none was given")
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[config.method]
    activation = QuantType.QUInt8 if config.activation_type == "quint8" else QuantType.QInt8
    try:
        src, dst = src.resolve(), dst.resolve()
        with scratch_cwd() as tmp:
            prepared = tmp / "prepared.onnx"
            try:
                quant_pre_process(str(src), str(prepared), skip_optimization=True)
            except Exception:  # noqa: BLE001  contrib ops defeat symbolic shape inference
                prepared = src
            with quiet():
                ort_quantize_static(
                    str(prepared),
                    str(dst),
                    _Reader(feeds),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(config.op_types) if config.op_types else None,
                    per_channel=config.per_channel,
                    activation_type=activation,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(config.nodes_to_exclude),
                    calibrate_method=method,
                    extra_options={"ActivationSymmetric": config.activation_type == "qint8"},
                )
    except OptimizationError:
        raise
    except Exception as e:
        raise OptimizationError(
            f"static quantization of {src.name} failed: {type(e).__name__}: {e}"
        ) from e
    ops = op_histogram(dst)
    return Variant(
        name=name,
        path=dst,
        precision="int8",
        device="cpu",
        recipe=(
            {
                "pass": "quantize_static",
                **dataclasses.asdict(config),
                "calibration_samples": len(feeds),
            },
        ),
        details={
            "quantized_tensors": ops.get("QuantizeLinear", 0),
            "excluded_nodes": list(config.nodes_to_exclude),
            "ops": {k: v for k, v in ops.items() if k in ("QuantizeLinear", "DequantizeLinear")},
        },
    )
