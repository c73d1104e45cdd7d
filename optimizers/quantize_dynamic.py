"""Dynamic int8: weights quantized offline, activations quantized per batch at run time.

Rules:
- Weights int8, per output channel by default (per-tensor scales lose the outlier channels
  that transformer projections have, which is where optimum's per-tensor preset loses accuracy).
- Activations uint8 (onnxruntime's dynamic path has no signed activations); with int8 weights
  that is the U8S8 kernel that VNNI and AVX-512 accelerate.
- Only MatMul/Attention with constant weights by default; ``Gather`` in ``op_types`` also
  stores embedding tables int8 (a DequantizeLinear after the lookup).
- Subgraphs (the branches of a merged decoder's If) are quantized like the main graph.
- Nodes in ``nodes_to_exclude`` stay fp32 (the accuracy search fills it); a non-empty
  ``nodes_to_quantize`` quantizes those nodes only (the mixed-precision pass's second step).
- Fused graphs lack shape information for contrib ops; ``DefaultTensorType`` stands in, which
  is the documented fix for onnxruntime's "unable to find data type" failure on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from convert_model.core.errors import OptimizationError
from convert_model.core.quiet import quiet
from optimizers.types import Variant, op_histogram

WEIGHT_TYPES = ("qint8", "quint8")


@dataclass(frozen=True, kw_only=True)
class DynamicQuantConfig:
    """Dynamic quantization settings."""

    per_channel: bool = True
    reduce_range: bool = False
    weight_type: str = "qint8"
    op_types: tuple[str, ...] = ("MatMul", "Attention")
    nodes_to_exclude: tuple[str, ...] = ()
    nodes_to_quantize: tuple[str, ...] = ()
    # False also quantizes activation × activation MatMuls (attention scores): faster, and
    # measured against the budget like everything else.
    constant_weights_only: bool = True

    def __post_init__(self) -> None:
        if self.weight_type not in WEIGHT_TYPES:
            raise ValueError(f"weight_type must be one of {WEIGHT_TYPES}, got {self.weight_type!r}")
        if not self.op_types:
            raise ValueError("op_types must name at least one op type")


def quantize_dynamic(
    src: Path, dst: Path, config: DynamicQuantConfig, name: str = "int8-dynamic"
) -> Variant:
    """Write a dynamically quantized copy of ``src`` to ``dst``."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    weight = QuantType.QInt8 if config.weight_type == "qint8" else QuantType.QUInt8
    try:
        with quiet():
            ort_quantize_dynamic(
                str(src),
                str(dst),
                op_types_to_quantize=list(config.op_types),
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                weight_type=weight,
                nodes_to_exclude=list(config.nodes_to_exclude),
                nodes_to_quantize=list(config.nodes_to_quantize) or None,
                extra_options={
                    "DefaultTensorType": onnx.TensorProto.FLOAT,
                    "MatMulConstBOnly": config.constant_weights_only,
                    # optimum's merged decoder keeps both decoders inside an If node.
                    "EnableSubgraph": True,
                },
            )
    except Exception as e:
        raise OptimizationError(
            f"dynamic quantization of {src.name} failed: {type(e).__name__}: {e}"
        ) from e
    ops = op_histogram(dst)
    quantized = sum(
        ops.get(op, 0)
        for op in (
            "MatMulInteger",
            "DynamicQuantizeMatMul",
            "QAttention",
            "ConvInteger",
            "MatMulIntegerToFloat",
        )
    )
    if quantized == 0:
        dst.unlink(missing_ok=True)
        raise OptimizationError(
            f"dynamic quantization found nothing to quantize in {src.name} "
            f"(no {'/'.join(config.op_types)} with constant weights)"
        )
    return Variant(
        name=name,
        path=dst,
        precision="int8",
        device="cpu",
        recipe=({"pass": "quantize_dynamic", **dataclasses.asdict(config)},),
        details={
            "quantized_nodes": quantized,
            "excluded_nodes": list(config.nodes_to_exclude),
            "ops": {
                k: v
                for k, v in ops.items()
                if k
                in (
                    "MatMulInteger",
                    "DynamicQuantizeMatMul",
                    "QAttention",
                    "DynamicQuantizeLinear",
                    "MatMulIntegerToFloat",
                    "MatMul",
                    "Gather",
                    "DequantizeLinear",
                )
            },
        },
    )
