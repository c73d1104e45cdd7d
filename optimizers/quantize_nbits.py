"""Weight-only int8/int4: MatMul weights stored in blocks of n bits, activations stay float.

Rules:
- Every MatMul with a constant weight becomes a ``MatMulNBits`` (onnxruntime's contrib op):
  weights in blocks of ``block_size`` (32) along the input axis, one scale per block, so an
  outlier weight costs only its own block's precision; activations are never quantized, so
  activation outlier channels cost nothing at all (what dynamic int8 loses on).
- ``accuracy_level`` 4 lets the kernel quantize the activations to int8 per block on the
  fly and use the integer dot-product instructions where the CPU has them; 0 computes in
  float. Whether that is faster than fp32 depends on the CPU: the search measures it.
- The pass runs on the unfused graph: the transformer optimizer's fused ``Attention`` packs
  Q, K and V into an op this pass cannot read; onnxruntime fuses the rest when it loads.
- Nodes in ``nodes_to_exclude`` keep their fp32 MatMul.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from convert_model.core.errors import OptimizationError
from convert_model.core.quiet import quiet
from optimizers.types import Variant, op_histogram

BITS = (4, 8)
ACCURACY_LEVELS = (0, 1, 2, 3, 4)


@dataclass(frozen=True, kw_only=True)
class NBitsConfig:
    """Weight-only quantization settings."""

    bits: int = 8
    block_size: int = 32
    accuracy_level: int = 4
    symmetric: bool = True
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.bits not in BITS:
            raise ValueError(f"bits must be one of {BITS}, got {self.bits!r}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of 2 >= 16, got {self.block_size}")
        if self.accuracy_level not in ACCURACY_LEVELS:
            raise ValueError(
                f"accuracy_level must be one of {ACCURACY_LEVELS}, got {self.accuracy_level!r}"
            )


def quantize_nbits(src: Path, dst: Path, config: NBitsConfig, name: str = "int8-nbits") -> Variant:
    """Write a copy of ``src`` whose constant-weight MatMuls are ``MatMulNBits``, to ``dst``."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    try:
        with quiet():
            model = onnx.load(str(src))
            algo = DefaultWeightOnlyQuantConfig(
                block_size=config.block_size,
                is_symmetric=config.symmetric,
                accuracy_level=config.accuracy_level,
                bits=config.bits,
            )
            quantizer = MatMulNBitsQuantizer(
                model, nodes_to_exclude=list(config.nodes_to_exclude), algo_config=algo
            )
            quantizer.process()
            quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    except Exception as e:
        raise OptimizationError(
            f"weight-only {config.bits}-bit quantization of {src.name} failed: "
            f"{type(e).__name__}: {e}"
        ) from e
    ops = op_histogram(dst)
    if not ops.get("MatMulNBits"):
        dst.unlink(missing_ok=True)
        raise OptimizationError(
            f"weight-only quantization found no MatMul with a constant weight in {src.name}"
        )
    return Variant(
        name=name,
        path=dst,
        precision="int8",
        device="cpu",
        recipe=({"pass": "quantize_nbits", **dataclasses.asdict(config)},),
        details={
            "quantized_nodes": ops["MatMulNBits"],
            "excluded_nodes": list(config.nodes_to_exclude),
            "ops": {k: v for k, v in ops.items() if k in ("MatMulNBits", "MatMul")},
        },
    )
