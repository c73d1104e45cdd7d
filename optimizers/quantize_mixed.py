"""Mixed-precision dynamic int8: one int8 form everywhere but the few MatMuls that lose most.

Rules:
- ``sensitive_nodes`` come from the caller's ranking (``benchmarks.int8_probe``: the
  weights' channel-range spread for per-channel protection, the measured error against
  fp32 under per-channel int8 for fp32 protection); it picks how many of the worst.
- Every other node is quantized as ``base`` says (per-tensor weights by default: the
  fastest kernel).
- The sensitive nodes are kept fp32 (``protect="fp32"``), or quantized again with one scale
  per output channel (``protect="per-channel"``), which keeps their outlier weight rows.
- With no sensitive node the result is ``base`` itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from optimizers.quantize_dynamic import DynamicQuantConfig, quantize_dynamic
from optimizers.types import Variant, op_histogram

PROTECTIONS = ("fp32", "per-channel")


@dataclass(frozen=True, kw_only=True)
class MixedQuantConfig:
    """What the sensitive nodes get, which they are, and how the rest are quantized."""

    protect: str = "per-channel"
    sensitive_nodes: tuple[str, ...] = ()
    base: DynamicQuantConfig = field(
        default_factory=lambda: DynamicQuantConfig(per_channel=False)
    )

    def __post_init__(self) -> None:
        if self.protect not in PROTECTIONS:
            raise ValueError(f"protect must be one of {PROTECTIONS}, got {self.protect!r}")
        if self.protect == "per-channel" and self.base.per_channel:
            raise ValueError("protect='per-channel' needs a per-tensor base (per_channel=False)")
        if self.base.nodes_to_quantize:
            raise ValueError("base.nodes_to_quantize must be empty; sensitive_nodes names nodes")


def quantize_mixed(src: Path, dst: Path, config: MixedQuantConfig,
                   name: str = "int8-mixed") -> Variant:
    """Write the mixed-precision copy of ``src`` to ``dst``."""
    sensitive = config.sensitive_nodes
    base = dataclasses.replace(
        config.base, nodes_to_exclude=tuple({*config.base.nodes_to_exclude, *sensitive})
    )
    two_steps = config.protect == "per-channel" and bool(sensitive)
    first = dst.with_name(f".{dst.stem}.per-tensor.onnx") if two_steps else dst
    quantize_dynamic(src, first, base, name=name)
    if two_steps:
        try:
            protected = dataclasses.replace(
                config.base, per_channel=True, nodes_to_exclude=(), nodes_to_quantize=sensitive
            )
            quantize_dynamic(first, dst, protected, name=name)
        finally:
            first.unlink(missing_ok=True)
    ops = op_histogram(dst)
    return Variant(
        name=name,
        path=dst,
        precision="int8",
        device="cpu",
        recipe=({"pass": "quantize_mixed", **dataclasses.asdict(config)},),
        details={
            "quantized_nodes": ops.get("MatMulInteger", 0),
            "protected_nodes": list(sensitive),
            "protected_as": config.protect,
            "excluded_nodes": list(sensitive) if config.protect == "fp32" else [],
            "ops": {k: v for k, v in ops.items()
                    if k in ("MatMulInteger", "DynamicQuantizeLinear", "MatMul")},
        },
    )
