"""fp16 for GPU serving: float16 weights and arithmetic, float32 inputs and outputs.

Rules:
- Inputs and outputs keep their types (Cast nodes at the edges), so callers do not change.
- Ops in ``op_block_list`` stay fp32 (onnxruntime's default list plus ops whose fp16
  kernels overflow or do not exist).
- On a CPU-only machine the file is checked for parity only; its speed means something on GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convert_model.core.errors import OptimizationError
from convert_model.core.quiet import quiet
from optimizers.scratch import scratch_cwd
from optimizers.types import Variant, op_histogram


@dataclass(frozen=True, kw_only=True)
class Fp16Config:
    """Which ops stay fp32, beyond onnxruntime's default block list."""

    keep_io_types: bool = True
    op_block_list: tuple[str, ...] = ()


def to_fp16(src: Path, dst: Path, config: Fp16Config, name: str = "fp16") -> Variant:
    """Write an fp16 copy of ``src`` to ``dst``."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST
    from onnxruntime.transformers.onnx_model import OnnxModel

    src, dst = src.resolve(), dst.resolve()
    blocked = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(config.op_block_list))
    try:
        # OnnxModel's conversion knows the fused contrib ops (SkipLayerNormalization's
        # type constraints, for one), which the bare converter breaks.
        model = OnnxModel(onnx.load(str(src)))
        with quiet(), scratch_cwd():
            model.convert_float_to_float16(
                keep_io_types=config.keep_io_types, op_block_list=blocked
            )
        model.save_model_to_file(str(dst))
    except Exception as e:
        raise OptimizationError(
            f"fp16 conversion of {src.name} failed: {type(e).__name__}: {e}"
        ) from e
    return Variant(
        name=name,
        path=dst,
        precision="fp16",
        device="cuda",
        recipe=({"pass": "fp16", "keep_io_types": config.keep_io_types, "op_block_list": blocked},),
        details={"casts": op_histogram(dst).get("Cast", 0)},
    )
