"""pytest-benchmark suite: onnxruntime inference of each reference model's bundle vs the original.

For every reference model: the original (PyTorch eager, as the pipeline loads it), the fp32
export and the recommended variant, each benchmarked on the bundle's first stored sample
input at the bundle's thread count. Then the speed-up ratios measured in this same run are
asserted: ratios, never absolute times, so the suite holds on any machine.

Run: ``python -m pytest benchmarks/ --benchmark-json out.json`` (see ``benchmarks/suite.py``
for the environment variables that choose models and where bundles go).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.suite import Converted, selected_models

MODELS = selected_models()
RUNNERS = ("original", "fp32", "recommended")
ROUNDS = 30
# The recommended variant must beat the original, and never lose to the plain export by more
# than the spread of sequential (not interleaved) benchmark runs.
MIN_SPEEDUP_VS_ORIGINAL = 1.0
MIN_SPEEDUP_VS_FP32 = 0.85

_medians: dict[tuple[str, str], float] = {}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("model", MODELS)
def test_inference_speed(
    benchmark: Any, converted: Callable[[str], Converted], model: str, runner: str
) -> None:
    """Benchmark one runner of one model; keep its median for the ratio test."""
    bundle = converted(model)
    run = bundle.runners[runner]
    benchmark.group = model
    benchmark.extra_info.update(model=model, runner=runner, variant=bundle.recommended)
    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=3, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        _medians[(model, runner)] = stats.stats.median


@pytest.mark.parametrize("model", MODELS)
def test_speedup_ratios_hold(model: str) -> None:
    """The recommended variant's speed-ups over the original and fp32, from this run."""
    times = {r: _medians.get((model, r)) for r in RUNNERS}
    if any(t is None for t in times.values()):
        pytest.skip("needs the benchmarks of this model from the same run")
    original, fp32, recommended = (times[r] or 0.0 for r in RUNNERS)
    vs_original = original / recommended
    vs_fp32 = fp32 / recommended
    print(f"{model}: recommended {vs_original:.2f}x the original, {vs_fp32:.2f}x fp32")
    assert vs_original > MIN_SPEEDUP_VS_ORIGINAL, (
        f"{model}: the recommended variant is {vs_original:.2f}x the original's speed"
    )
    assert vs_fp32 >= MIN_SPEEDUP_VS_FP32, (
        f"{model}: the recommended variant is {vs_fp32:.2f}x the fp32 export's speed"
    )
