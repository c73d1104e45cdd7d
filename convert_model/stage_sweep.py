"""The pipeline's sweep stage: the original and every CPU variant over batch sizes and lengths.

Orchestration only: the sweep and the footprint are measured by ``benchmarks.sweep`` and
``benchmarks.footprint``. It runs before the choice, while every variant's file is still in
the staging folder (the choice deletes the files of variants it does not keep).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.sweep import (
    ORIGINAL,
    SweepConfig,
    SweepResult,
    plan_points,
    point_inputs,
    run_sweep,
)
from convert_model.pipeline import DEFAULT_SWEEP
from convert_model.progress import Progress
from convert_model.stages import NOT_KEPT, Original, latency_feed, ort_runner
from converters.export_tabular import TABULAR
from converters.types import Inputs, LoadedModel, TensorSpec

_POSITION_LIMITS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
TABULAR_SWEEP = SweepConfig(batch_sizes=(1, 1000))
"""Trees score one edit as it happens or a table of them in a batch job (issue 8)."""


def sweep_config(requested: SweepConfig | None, loaded: LoadedModel) -> SweepConfig | None:
    """The sweep to run: the one asked for, or, when none was, the default for this model.

    Trees get batch 1 and 1,000 (their inputs have no sequence axis); every other model
    the default.
    """
    if requested is DEFAULT_SWEEP and loaded.framework in TABULAR:
        return TABULAR_SWEEP
    return requested


def sweep_feed(loaded: LoadedModel, original: Original) -> Inputs:
    """The input the sweep's points are tiled from.

    For trees, the largest set of adversarial check rows: a batch of 1,000 then takes many
    paths through the trees (split thresholds, NaN, extremes), not one path 1,000 times.
    For other models, the latency stage's batch-1 input.
    """
    if loaded.framework in TABULAR:
        return max(original.examples, key=lambda feed: len(next(iter(feed.values()))))
    return latency_feed(original)


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


def measure_sweep(
    records: Sequence[Any],
    folder: Path,
    loaded: LoadedModel,
    inputs: Sequence[TensorSpec],
    original: Original,
    options: Any,
    threads: int,
    progress: Progress,
) -> SweepResult | None:
    """Sweep the original and every runnable CPU variant; then each graph's footprint.

    Returns None when ``options.sweep`` is None (the sweep is switched off).
    """
    from benchmarks.footprint import measure_footprint

    config = sweep_config(options.sweep, loaded)
    if config is None:
        return None
    base = sweep_feed(loaded, original)
    axes = input_axes(inputs)
    limit = max_seq_len(loaded)
    graphs = {
        r.name: folder / r.file
        for r in records
        if r.device == options.device and r.file != NOT_KEPT
    }
    runners: dict[str, Callable[[Any], object]] = {ORIGINAL: loaded.run}
    runners.update({name: ort_runner(path, threads) for name, path in graphs.items()})
    points = plan_points(config, axes, limit)
    with progress.bar(len(points), "sweep") as bar:
        result = run_sweep(
            runners, base, axes, config, threads=threads, max_seq_len=limit, on_point=bar.advance
        )
    for point in result.points:
        for name, error in point.errors.items():
            progress.note(
                f"sweep: {name} cannot run batch {point.batch_size}, seq {point.seq_len}: {error}"
            )
    if not config.footprint:
        return result
    first = point_inputs(base, axes, 1, None)
    largest = point_inputs(base, axes, *points[-1]) if points else first
    footprints, errors = {}, {}
    with progress.bar(len(graphs), "cold start and memory") as bar:
        for name, path in graphs.items():
            try:
                footprints[name] = measure_footprint(path, first, largest, threads)
            except RuntimeError as e:
                errors[name] = str(e)
                progress.note(f"{name}: {e}")
            bar.advance(name)
    return replace(result, footprints=footprints, footprint_errors=errors)
