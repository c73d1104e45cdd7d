"""Stage 5a: the original and every CPU variant over batch sizes and lengths; footprints.

Orchestration only: the sweep and the footprint are measured by ``benchmarks.sweep`` and
``benchmarks.footprint``. It runs before the choice, while every variant's file is still in
the staging folder (the choice deletes the files of variants it does not keep).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from benchmarks.original import Original
from benchmarks.sweep import ORIGINAL, SweepConfig, plan_points, point_inputs, run_sweep
from convert_model.options import SweepSetting
from convert_model.state import ConversionState
from converters.export_tabular import TABULAR
from converters.onnx_graph import runner
from converters.types import Inputs, LoadedModel, TensorSpec

_POSITION_LIMITS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
TABULAR_SWEEP = SweepConfig(batch_sizes=(1, 1000))
"""Trees score one edit as it happens or a table of them in a batch job."""


def sweep_config(setting: SweepSetting, loaded: LoadedModel) -> SweepConfig | None:
    """The sweep to run: the one asked for; under ``auto`` the default for this kind of model.

    Trees get batch 1 and 1,000 (their inputs have no sequence axis); every other model the
    default points. ``off`` is None.
    """
    if isinstance(setting, SweepConfig):
        return setting
    if setting == "off":
        return None
    return TABULAR_SWEEP if loaded.framework in TABULAR else SweepConfig()


def sweep_feed(loaded: LoadedModel, original: Original) -> Inputs:
    """The input the sweep's points are tiled from.

    For trees, the largest set of adversarial check rows: a batch of 1,000 then takes many
    paths through the trees (split thresholds, NaN, extremes), not one path 1,000 times.
    For other models, the latency stage's batch-1 input.
    """
    if loaded.framework in TABULAR:
        return max(original.examples, key=lambda feed: len(next(iter(feed.values()))))
    return original.latency_feed()


def max_seq_len(loaded: LoadedModel) -> int | None:
    """The longest sequence the model's config allows (position embeddings), when it says.

    Composite configs (CLIP, SigLIP, LLaVA) keep it in a sub-config: the text one first,
    then the smallest limit any sub-config states.
    """
    return config_position_limit(getattr(loaded.hf_model, "config", None))


_SUB_CONFIGS = ("text_config", "vision_config", "encoder", "decoder")


def config_position_limit(config: object) -> int | None:
    """The position limit of ``config``, or of its text/vision/encoder/decoder sub-configs."""
    for name in _POSITION_LIMITS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    text = config_position_limit(getattr(config, "text_config", None)) if config else None
    if text is not None:
        return text
    limits = [limit for sub in _SUB_CONFIGS[1:] if config is not None
              and (limit := config_position_limit(getattr(config, sub, None))) is not None]
    return min(limits) if limits else None


def input_axes(inputs: Sequence[TensorSpec]) -> dict[str, dict[int, str]]:
    """Per graph input, its dynamic axes by index."""
    return {t.name: {i: d for i, d in enumerate(t.dims) if isinstance(d, str)} for t in inputs}


def run(state: ConversionState) -> ConversionState:
    """Sweep the original and every runnable CPU variant; then each graph's footprint."""
    from benchmarks.footprint import measure_footprint

    loaded, progress = state.model, state.progress
    config = sweep_config(state.options.sweep, loaded)
    if config is None or state.broken is not None:
        return state
    base = sweep_feed(loaded, state.reference)
    axes = input_axes(state.exported.inputs)
    limit = max_seq_len(loaded)
    graphs = {r.name: state.staging / r.file for r in state.records
              if r.device == state.options.device and r.kept}
    runners: dict[str, Callable[[Any], object]] = {ORIGINAL: loaded.run}
    runners.update({name: runner(path, state.threads) for name, path in graphs.items()})
    points = plan_points(config, axes, limit)
    with progress.bar(len(points), "sweep") as bar:
        result = run_sweep(runners, base, axes, config, threads=state.threads,
                           max_seq_len=limit, on_point=bar.advance)
    for point in result.points:
        for name, error in point.errors.items():
            state.log(f"sweep: {name} cannot run batch {point.batch_size}, seq {point.seq_len}: "
                      f"{error}")
    if not config.footprint:
        return replace(state, sweep=result)
    first = point_inputs(base, axes, 1, None)
    largest = point_inputs(base, axes, *points[-1]) if points else first
    footprints: dict[str, Any] = {}
    errors: Mapping[str, str] = {}
    with progress.bar(len(graphs), "cold start and memory") as bar:
        for name, path in graphs.items():
            try:
                footprints[name] = measure_footprint(path, first, largest, state.threads)
            except RuntimeError as e:
                errors = {**errors, name: str(e)}
                state.log(f"{name}: {e}")
            bar.advance(name)
    return replace(state, sweep=replace(result, footprints=footprints, footprint_errors=errors))
