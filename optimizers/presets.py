"""Named optimisation recipes, as data. ``--preset NAME`` builds one; ``--precision`` picks a set.

A preset is the passes applied to the exported fp32 graph, in order: an optional fusion, an
optional SmoothQuant-style scaling, then at most one of dynamic int8, mixed-precision int8,
weight-only n-bit, static int8 or fp16. ``INT8_SEARCH`` lists the int8 candidates the
search (``optimizers.int8_search``) tries, in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert_model.core.errors import OptimizationError
from optimizers.fp16 import Fp16Config, to_fp16
from optimizers.fuse import FuseConfig, fuse
from optimizers.quantize_dynamic import DynamicQuantConfig, quantize_dynamic
from optimizers.quantize_mixed import MixedQuantConfig, quantize_mixed
from optimizers.quantize_nbits import NBitsConfig, quantize_nbits
from optimizers.quantize_static import StaticQuantConfig, quantize_static
from optimizers.smooth import MeasureRanges, SmoothConfig, smooth
from optimizers.types import Variant


@dataclass(frozen=True, kw_only=True)
class Preset:
    """One recipe: whether to fuse first, and which precision pass follows."""

    name: str
    description: str
    device: str
    precision: str
    fuse: bool = True
    dynamic: DynamicQuantConfig | None = None
    static: StaticQuantConfig | None = None
    fp16: Fp16Config | None = None
    mixed: MixedQuantConfig | None = None
    nbits: NBitsConfig | None = None
    # Before the precision pass, after fusion when there is one: the activation ranges are
    # keyed by tensor name, and the fusions keep the names of the MatMuls' inputs they leave.
    smooth: SmoothConfig | None = None

    def __post_init__(self) -> None:
        passes = [p for p in (self.dynamic, self.static, self.fp16, self.mixed, self.nbits)
                  if p is not None]
        if len(passes) > 1:
            raise ValueError(f"preset {self.name!r} sets more than one precision pass")

    @property
    def needs_calibration(self) -> bool:
        """Whether building it needs sample inputs."""
        return self.static is not None

    @property
    def needs_sensitivity(self) -> bool:
        """Whether building it needs the sensitive nodes of a sensitivity pass."""
        return self.mixed is not None


PRESETS: Mapping[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="cpu-fp32",
            description="fused fp32 (transformer or graph-level fusions)",
            device="cpu",
            precision="fp32",
        ),
        Preset(
            name="cpu-int8",
            description="fused, then dynamic int8 (per-channel int8 weights)",
            device="cpu",
            precision="int8",
            dynamic=DynamicQuantConfig(),
        ),
        Preset(
            name="cpu-int8-plain",
            description="dynamic int8 of the unfused graph; onnxruntime fuses it when it loads",
            device="cpu",
            precision="int8",
            fuse=False,
            dynamic=DynamicQuantConfig(),
        ),
        Preset(
            name="cpu-int8-plain-per-tensor",
            description="as cpu-int8-plain with one weight scale per tensor (faster on some "
            "CPUs, less exact where channels differ in range), embedding tables int8 too",
            device="cpu",
            precision="int8",
            fuse=False,
            # Gather: embedding tables stored int8 and dequantized per looked-up row; on the
            # BERT-base reference model that is as accurate, 15% smaller and a little faster.
            dynamic=DynamicQuantConfig(per_channel=False, op_types=("MatMul", "Attention",
                                                                    "Gather")),
        ),
        Preset(
            name="cpu-int8-plain-all-matmuls",
            description="as cpu-int8-plain-per-tensor, also quantizing the attention MatMuls "
            "between activations",
            device="cpu",
            precision="int8",
            fuse=False,
            dynamic=DynamicQuantConfig(per_channel=False, constant_weights_only=False),
        ),
        Preset(
            name="cpu-int8-mixed",
            description="per-tensor dynamic int8, but the MatMuls whose output channels' "
            "weight ranges differ most quantized again per channel",
            device="cpu",
            precision="int8",
            fuse=False,
            mixed=MixedQuantConfig(protect="per-channel"),
        ),
        Preset(
            name="cpu-int8-mixed-fp32",
            description="per-channel dynamic int8, but the MatMuls a sensitivity pass finds "
            "worst (activation outliers) kept fp32",
            device="cpu",
            precision="int8",
            fuse=False,
            mixed=MixedQuantConfig(protect="fp32", base=DynamicQuantConfig(per_channel=True)),
        ),
        Preset(
            name="cpu-int8-smooth",
            description="fused, then SmoothQuant-style scaling of the activation outlier "
            "channels into the weights, then per-channel dynamic int8",
            device="cpu",
            precision="int8",
            smooth=SmoothConfig(),
            dynamic=DynamicQuantConfig(),
        ),
        Preset(
            name="cpu-int8-smooth-per-tensor",
            description="fused, then SmoothQuant-style scaling, then per-tensor dynamic int8",
            device="cpu",
            precision="int8",
            smooth=SmoothConfig(),
            dynamic=DynamicQuantConfig(per_channel=False),
        ),
        Preset(
            name="cpu-int8-nbits8",
            description="weight-only 8-bit MatMulNBits (blocks of 32, accuracy level 4): "
            "activations stay float, so their outliers cost nothing",
            device="cpu",
            precision="int8",
            fuse=False,
            nbits=NBitsConfig(bits=8),
        ),
        Preset(
            name="cpu-int8-nbits4",
            description="weight-only 4-bit MatMulNBits (blocks of 32, accuracy level 4)",
            device="cpu",
            precision="int8",
            fuse=False,
            nbits=NBitsConfig(bits=4),
        ),
        Preset(
            name="cpu-int8-static",
            description="static int8 QDQ, MinMax calibration (CNNs)",
            device="cpu",
            precision="int8",
            fuse=False,
            static=StaticQuantConfig(),
        ),
        Preset(
            name="cpu-int8-static-entropy",
            description="static int8 QDQ, entropy calibration",
            device="cpu",
            precision="int8",
            fuse=False,
            static=StaticQuantConfig(method="entropy"),
        ),
        Preset(
            name="cpu-int8-static-percentile",
            description="static int8 QDQ, percentile calibration",
            device="cpu",
            precision="int8",
            fuse=False,
            static=StaticQuantConfig(method="percentile"),
        ),
        Preset(
            name="gpu-fp16",
            description="fused for GPU, then fp16 with fp32 inputs/outputs",
            device="cuda",
            precision="fp16",
            fp16=Fp16Config(),
        ),
    )
}

# What --precision builds on a CPU, in order, before the int8 search; "auto" measures them
# all and picks. The dynamic and weight-only int8 candidates are the search's (INT8_SEARCH).
PRECISION_PRESETS: Mapping[str, tuple[str, ...]] = {
    "auto": ("cpu-fp32", "cpu-int8-static", "gpu-fp16"),
    "fp32": ("cpu-fp32",),
    "int8": ("cpu-int8-static",),
    "fp16": ("gpu-fp16",),
}

# The int8 search's candidates, in the order it tries them: the fastest expected first, so
# that a later one within noise of it never replaces it (a later candidate must be clearly
# faster than the best so far). Fused first: onnxruntime's transformer fusions (Attention,
# SkipLayerNorm) gain more than any int8 kernel choice, and per-channel weights cost no
# speed where the CPU has VNNI. So: fused per-channel; fused and smoothed (activation
# outlier channels moved into the weights; a Mul per smoothed activation), per-tensor then
# per-channel; then the unfused graphs, which onnxruntime fuses less at load: per-tensor
# (embedding tables too), per-tensor with its spread-out weights per channel, per-channel,
# per-channel with its worst MatMuls fp32, and weight-only n-bit, whose speed depends most
# on the CPU.
INT8_SEARCH: tuple[str, ...] = (
    "cpu-int8",
    "cpu-int8-smooth-per-tensor",
    "cpu-int8-smooth",
    "cpu-int8-plain-per-tensor",
    "cpu-int8-mixed",
    "cpu-int8-plain",
    "cpu-int8-mixed-fp32",
    "cpu-int8-nbits8",
    "cpu-int8-nbits4",
)


def candidates(precision: str, preset: str | None, *, tabular: bool,
               transformer: bool) -> tuple[str, ...]:
    """Which presets to build: ``preset``, else those of ``precision``.

    Rules:
    1. A named preset is built alone.
    2. Tree ensembles under ``auto`` get fused fp32 only: they have no MatMul to quantize,
       and fp16 thresholds break their splits.
    3. Under ``auto``, static int8 is built only for graphs the transformer optimizer does
       not know (CNNs, MLPs): transformers' activation outliers make it lose to dynamic int8.
    """
    if preset is not None:
        return (preset,)
    if tabular and precision == "auto":
        return ("cpu-fp32",)
    names = PRECISION_PRESETS[precision]
    if precision == "auto" and transformer:
        names = tuple(n for n in names if not n.startswith("cpu-int8-static"))
    return names


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def build(
    preset: Preset,
    src: Path,
    folder: Path,
    fuse_config: FuseConfig,
    calibration: Sequence[Mapping[str, np.ndarray]] = (),
    nodes_to_exclude: tuple[str, ...] = (),
    name: str | None = None,
    sensitive_nodes: tuple[str, ...] = (),
    ranges: Mapping[str, np.ndarray] | None = None,
    measure: MeasureRanges | None = None,
) -> Variant:
    """Apply ``preset`` to ``src``, writing ``folder/model.<name>.onnx`` (name: the preset's).

    ``sensitive_nodes`` are the nodes a mixed-precision preset protects; ``ranges`` the
    activation ranges (tensor → largest ``|x|`` per channel) a smoothing preset needs, and
    ``measure(graph, tensors)`` measures those of the graph being smoothed that ``ranges``
    lacks (the fused graph's own tensors).
    """
    name = name or preset.name
    dst = folder / f"model.{name}.onnx"
    fuse_config = dataclasses.replace(fuse_config, use_gpu=preset.device == "cuda")
    steps: list[Variant] = []
    current = src
    if preset.fuse:
        fused_path = dst if preset.precision == "fp32" else folder / f".{name}.fused.onnx"
        steps.append(fuse(current, fused_path, fuse_config))
        current = fused_path
    if preset.smooth is not None:
        if not ranges:
            raise OptimizationError(
                f"preset {preset.name!r} needs the activation ranges of its MatMul inputs "
                "(measured by the caller, e.g. benchmarks.activation_ranges)")
        smoothed_path = folder / f".{name}.smoothed.onnx"
        steps.append(smooth(current, smoothed_path, preset.smooth, ranges, measure=measure))
        if current != src:
            current.unlink(missing_ok=True)
        current = smoothed_path
    try:
        if preset.dynamic is not None:
            config = dataclasses.replace(preset.dynamic, nodes_to_exclude=nodes_to_exclude)
            steps.append(quantize_dynamic(current, dst, config, name=name))
        elif preset.static is not None:
            config_s = dataclasses.replace(preset.static, nodes_to_exclude=nodes_to_exclude)
            steps.append(quantize_static(current, dst, config_s, calibration, name=name))
        elif preset.fp16 is not None:
            steps.append(to_fp16(current, dst, preset.fp16, name=name))
        elif preset.mixed is not None:
            config_m = dataclasses.replace(preset.mixed, sensitive_nodes=sensitive_nodes)
            steps.append(quantize_mixed(current, dst, config_m, name=name))
        elif preset.nbits is not None:
            config_n = dataclasses.replace(preset.nbits, nodes_to_exclude=nodes_to_exclude)
            steps.append(quantize_nbits(current, dst, config_n, name=name))
    finally:
        if current != src and current != dst:
            current.unlink(missing_ok=True)
    if not steps:
        raise OptimizationError(f"preset {preset.name!r} has no passes")
    details: dict[str, object] = {}
    for step in steps:
        details.update(step.details)
    return Variant(
        name=name,
        path=dst,
        precision=preset.precision,
        device=preset.device,
        recipe=tuple(r for step in steps for r in step.recipe),
        details=details,
    )
