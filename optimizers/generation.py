"""Generation variants: presets applied per sub-graph of a generation export.

A generation export has several graphs (encoder, decoder; or one decoder-only graph).
A recipe names, per role, the preset (``optimizers.presets``) its graph gets; a role it
does not name stays as exported. Rules, per sub-graph:

1. Fuse when the preset fuses, the transformer optimizer takes the graph and onnxruntime's
   CPU provider runs the result; otherwise the graph stays as exported and the reason is
   recorded (T5's fused RelativePositionBias has no CPU kernel).
2. Then dynamic int8 when the preset quantizes.
3. A merged decoder that a pass would change is rebuilt from its pair: each of the pair
   through the preset, then merged again (``merge``, which the caller provides: the
   optimizer cannot enter the merged graph's If, and the quantizer inside it can write a
   graph that no longer loads). When that fails, the passes run on the merged graph.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert_model.core.errors import OptimizationError, first_line, summary
from convert_model.core.names import BASELINE
from optimizers.fuse import FuseConfig, fuse
from optimizers.presets import PRESETS, Preset
from optimizers.quantize_dynamic import quantize_dynamic

Merge = Callable[[Path, Path, Path], None]
"""``merge(first_step_graph, with_past_graph, target)``: one decoder for both steps."""

ENCODER, DECODER = "encoder", "decoder"
DECODER_FIRST, DECODER_WITH_PAST = "decoder_first", "decoder_with_past"
DECODER_ROLES = (DECODER, DECODER_FIRST, DECODER_WITH_PAST)


@dataclass(frozen=True, kw_only=True)
class GenerationRecipe:
    """A generation variant: the preset each role's graph gets (absent: as exported)."""

    name: str
    description: str
    presets: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.presets.values()) - set(PRESETS))
        if unknown:
            raise ValueError(f"recipe {self.name!r} names unknown presets {unknown}")

    def preset(self, role: str) -> Preset | None:
        """The preset for ``role``'s graph, or None when it stays as exported."""
        name = self.presets.get(role)
        return PRESETS[name] if name is not None else None

    @property
    def precision(self) -> str:
        """int8 when any sub-graph is quantized, else fp32."""
        return "int8" if any(PRESETS[p].precision == "int8" for p in self.presets.values()) \
            else "fp32"

    def quantizes(self, roles: Mapping[str, Any]) -> bool:
        """Whether it quantizes any of ``roles``."""
        return any((p := self.preset(role)) is not None and p.dynamic is not None
                   for role in roles)


_EVERY_ROLE = (ENCODER, *DECODER_ROLES)
GENERATION_RECIPES: tuple[GenerationRecipe, ...] = (
    GenerationRecipe(name=BASELINE, description="fp32 export, as optimum-onnx wrote it"),
    GenerationRecipe(
        name="fp32-fused",
        description="fp32 with onnxruntime's transformer fusions in each sub-graph it takes",
        presets=dict.fromkeys(_EVERY_ROLE, "cpu-fp32"),
    ),
    GenerationRecipe(
        name="int8",
        description="fused where possible, then dynamic int8 (per-channel) in every sub-graph",
        presets=dict.fromkeys(_EVERY_ROLE, "cpu-int8"),
    ),
    GenerationRecipe(
        name="int8-decoder",
        description="dynamic int8 in the decoder only; the encoder, run once per input, fused fp32",
        presets={ENCODER: "cpu-fp32", **dict.fromkeys(DECODER_ROLES, "cpu-int8")},
    ),
)


def check_opens(path: Path, what: str) -> None:
    """OptimizationError unless onnxruntime's CPU provider can load ``path``."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise OptimizationError(f"{what} does not run on CPU: {first_line(e)}") from e


class Fuser:
    """Fuses each exported graph once, however many recipes ask; results stay beside it.

    A graph the optimizer cannot take, or whose fused form onnxruntime's CPU provider cannot
    run, is handed back unchanged with the reason.
    """

    def __init__(self, config: FuseConfig) -> None:
        self.config = config
        self.done: dict[Path, tuple[Path, dict[str, Any]]] = {}

    def __call__(self, source: Path) -> tuple[Path, dict[str, Any]]:
        """The graph to use in place of ``source``, and the step to record."""
        if source not in self.done:
            fused = source.with_name(f"fused-{source.name}")
            try:
                made = fuse(source, fused, self.config)
                check_opens(fused, "the fused graph")
                self.done[source] = (fused, {"pass": "fuse", **made.details})
            except OptimizationError as e:
                fused.unlink(missing_ok=True)
                self.done[source] = (source, {"pass": "fuse", "skipped": str(e)})
        return self.done[source]


@dataclass(frozen=True, kw_only=True)
class BuiltGeneration:
    """A recipe's graphs, written, and the steps each role's graph went through."""

    recipe: GenerationRecipe
    files: Mapping[str, Path]
    steps: Mapping[str, list[Any]]


def build_generation(recipe: GenerationRecipe, sources: Mapping[str, Path], target: Path,
                     fuser: Fuser, *, pair: Mapping[str, Path], merge: Merge) -> BuiltGeneration:
    """Write ``recipe``'s graphs for ``sources`` (role -> exported graph) into ``target``.

    ``pair`` holds the merged decoder's first-step and with-past graphs, when there are.

    Raises:
        OptimizationError: when quantization fails, or a fusing recipe fused nothing.
    """
    target.mkdir(parents=True, exist_ok=True)
    steps: dict[str, list[Any]] = {}
    files: dict[str, Path] = {}
    for role, source in sources.items():
        files[role] = out = target / source.name
        steps[role] = []
        preset = recipe.preset(role)
        if role == DECODER and pair and preset is not None:
            try:
                _rebuild_pair(preset, pair, out, fuser, merge, steps[role])
                continue
            except Exception as e:  # noqa: BLE001  fall back to passes inside the If
                steps[role] = [{"pass": "merge_decoders", "skipped": summary(e)}]
        _process(preset, source, out, fuser, steps[role])
    if recipe.presets and not recipe.quantizes(sources) and not any(
        step["pass"] == "fuse" and "skipped" not in step
        for role_steps in steps.values() for step in role_steps
    ):
        raise OptimizationError("the transformer optimizer fused no sub-graph")
    return BuiltGeneration(recipe=recipe, files=files, steps=steps)


def _process(preset: Preset | None, source: Path, target: Path, fuser: Fuser,
             steps: list[Any]) -> None:
    """One graph through the preset: fuse (when it takes and runs on CPU), int8, or a copy."""
    if preset is not None and preset.fuse:
        source, step = fuser(source)
        steps.append(step)
    if preset is not None and preset.dynamic is not None:
        made = quantize_dynamic(source, target, preset.dynamic)
        steps.append({"pass": "quantize_dynamic", **made.details})
    elif source != target:
        shutil.copy2(source, target)


def _rebuild_pair(preset: Preset, pair: Mapping[str, Path], target: Path, fuser: Fuser,
                  merge: Merge, steps: list[Any]) -> None:
    """The merged decoder rebuilt: each of the pair through the preset, then merged again."""
    parts = []
    for role in (DECODER_FIRST, DECODER_WITH_PAST):
        part = target.with_name(f".{role}-{target.name}")
        part_steps: list[Any] = []
        _process(preset, pair[role], part, fuser, part_steps)
        steps.extend({"graph": role, **step} for step in part_steps)
        parts.append(part)
    try:
        merge(parts[0], parts[1], target)
        check_opens(target, "the merged decoder")
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    steps.append({"pass": "merge_decoders"})
