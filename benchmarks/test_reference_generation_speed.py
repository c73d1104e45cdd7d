"""pytest-benchmark suite: generation by the bundle's loop vs ``model.generate``.

For every generative reference model: greedy generation of the bundle's first stored prompt
by the original (``model.generate``), by the bundle's loop over the fp32 graphs and over
the recommended generation variant. The fp32 loop generates the same tokens as the original,
so the ratio of their times is the tokens/s speed-up; it is asserted from this same run.

Run: ``python -m pytest benchmarks/ --benchmark-json out.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.suite import Converted, generative_models

MODELS = generative_models()
RUNNERS = ("original", "fp32", "recommended")
ROUNDS = 20
MIN_SPEEDUP_VS_ORIGINAL = 1.0

_medians: dict[tuple[str, str], float] = {}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("model", MODELS)
def test_generation_speed(
    benchmark: Any, converted: Callable[[str], Converted], model: str, runner: str
) -> None:
    """Benchmark one generator of one model; keep its median for the ratio test."""
    bundle = converted(model)
    if runner not in bundle.generation:
        pytest.skip(f"{model}: no {runner} generation in the bundle")
    benchmark.group = f"{model} generation"
    benchmark.extra_info.update(model=model, runner=runner)
    benchmark.pedantic(bundle.generation[runner], rounds=ROUNDS, warmup_rounds=2, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        _medians[(model, runner)] = stats.stats.median


@pytest.mark.parametrize("model", MODELS)
def test_generation_speedup_holds(model: str) -> None:
    """The bundle's fp32 loop generates faster than model.generate, in this run."""
    original, fp32 = (_medians.get((model, r)) for r in ("original", "fp32"))
    if original is None or fp32 is None:
        pytest.skip("needs the generation benchmarks of this model from the same run")
    speedup = original / fp32
    print(f"{model}: the bundle's fp32 loop generates {speedup:.2f}x as fast as model.generate")
    assert speedup > MIN_SPEEDUP_VS_ORIGINAL, (
        f"{model}: the bundle's loop is {speedup:.2f}x model.generate's speed"
    )
