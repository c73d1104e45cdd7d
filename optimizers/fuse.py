"""Fused fp32: onnxruntime's transformer optimizer for encoders it knows, graph-level otherwise.

Rules:
- A known architecture (``model_type`` maps to one of the optimizer's types) gets the
  transformer fusions: Attention/MultiHeadAttention, LayerNormalization and
  SkipLayerNormalization, Gelu/FastGelu/BiasGelu, EmbedLayerNormalization.
- Anything else gets onnxruntime's extended graph optimisations (constant folding,
  redundant node elimination, Conv/Gemm + activation fusion), saved to a file.
- The fusions that fired are counted by op type and recorded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from convert_model.core.errors import OptimizationError
from convert_model.core.quiet import quiet
from optimizers.types import Variant, op_histogram

# Hugging Face model_type -> onnxruntime transformer optimizer model_type.
ORT_MODEL_TYPES = {
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
    "distilbert": "bert",
    "camembert": "bert",
    "electra": "bert",
    "mpnet": "bert",
    "albert": "bert",
    "ernie": "bert",
    "gpt2": "gpt2",
    "vit": "vit",
    "deit": "vit",
    "bart": "bart",
    "mbart": "bart",
    "t5": "t5",
    "mt5": "t5",
    "swin": "swin",
    "clip": "clip",
}
FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "LayerNormalization",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "SkipSimplifiedLayerNormalization",
    "QuickGelu",
    "BiasSplitGelu",
    "FusedConv",
    "FusedGemm",
    "FusedMatMul",
)


@dataclass(frozen=True, kw_only=True)
class FuseConfig:
    """Which optimizer to run; ``num_heads``/``hidden_size`` 0 means read them from the graph."""

    model_type: str | None = None
    num_heads: int = 0
    hidden_size: int = 0
    use_gpu: bool = False
    # CPU graphs: SkipLayerNormalization written back as Add + LayerNormalization
    # (optimizers.split_layernorm), where the caller measured that faster on this machine.
    split_skip_layernorm: bool = False

    def __post_init__(self) -> None:
        if self.num_heads < 0 or self.hidden_size < 0:
            raise ValueError(
                f"num_heads and hidden_size must be >= 0, got {self.num_heads}, {self.hidden_size}"
            )


def ort_model_type(model_type: str | None) -> str | None:
    """The transformer optimizer's model type for a Hugging Face ``model_type``, if it has one."""
    if model_type is None:
        return None
    return ORT_MODEL_TYPES.get(model_type.replace("_", "-"))


def fuse(src: Path, dst: Path, config: FuseConfig) -> Variant:
    """Write a fused copy of ``src`` to ``dst``."""
    kind = ort_model_type(config.model_type)
    before = op_histogram(src)
    split = moved = 0
    try:
        with quiet():
            if kind is not None:
                split, moved = _transformer_fusions(src, dst, kind, config)
                optimizer = f"onnxruntime transformer optimizer ({kind})"
            else:
                _graph_optimisations(src, dst)
                optimizer = "onnxruntime graph optimizer (extended)"
    except Exception as e:
        raise OptimizationError(f"fusing {src.name} failed: {type(e).__name__}: {e}") from e
    after = op_histogram(dst)
    fired = {
        op: after[op] - before.get(op, 0)
        for op in FUSED_OPS
        if after.get(op, 0) > before.get(op, 0)
    }
    return Variant(
        name="fp32-fused",
        path=dst,
        precision="fp32",
        device="cuda" if config.use_gpu else "cpu",
        recipe=({"pass": "fuse", **dataclasses.asdict(config)},),
        details={
            "optimizer": optimizer,
            "fusions": fired,
            "nodes_before": sum(before.values()),
            "nodes_after": sum(after.values()),
            **({"skip_layernorm_split": split} if split else {}),
            **({"read_positions_only": moved} if moved else {}),
        },
    )


def _transformer_fusions(src: Path, dst: Path, kind: str,
                         config: FuseConfig) -> tuple[int, int]:
    """Fuse ``src`` into ``dst``; returns the SkipLayerNormalizations split and the moves.

    The moves: nodes that now compute only the positions the outputs read
    (``optimizers.read_positions``).
    """
    from onnxruntime.transformers import optimizer

    from optimizers.read_positions import read_positions
    from optimizers.split_layernorm import split_skip_layernorm

    # opt_level 0: the Python fusions only; onnxruntime's own level-2+ rewrites are
    # hardware-specific and are applied when a session loads the file instead.
    model = optimizer.optimize_model(
        str(src),
        model_type=kind,
        num_heads=config.num_heads,
        hidden_size=config.hidden_size,
        opt_level=0,
        use_gpu=config.use_gpu,
    )
    split = split_skip_layernorm(model.model) if (config.split_skip_layernorm
                                                  and not config.use_gpu) else 0
    moved = read_positions(model.model)  # after the fusions: they match layers as exported
    model.save_model_to_file(str(dst), use_external_data_format=_needs_external(src))
    return split, moved


def _graph_optimisations(src: Path, dst: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 4  # FATAL only: onnxruntime's log lines stay off the console
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def _needs_external(path: Path) -> bool:
    return any(path.parent.glob(path.name + ".data"))
