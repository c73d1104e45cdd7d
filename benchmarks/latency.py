"""Latency of several runners measured together: warmed up, then interleaved round by round.

Interleaving (every runner once per round, in a fresh seeded order each round) spreads a
noisy neighbour's load, and any runner's after-effects, over every runner alike, so the
ratios between them hold even when absolute times drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class LatencyConfig:
    """How long to measure: warm-up calls per runner, then rounds (each runner once per round)."""

    warmup: int = 3
    rounds: int = 20
    max_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.rounds < 1 or self.max_seconds <= 0:
            raise ValueError(f"need warmup >= 0, rounds >= 1, max_seconds > 0; got {self}")


@dataclass(frozen=True, kw_only=True)
class LatencyStats:
    """One runner's timings in milliseconds and its throughput."""

    name: str
    runs: int
    batch_size: int
    p50_ms: float
    p25_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    stdev_ms: float
    throughput: float

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form, rounded for reading."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def stats(name: str, samples_s: list[float], batch_size: int) -> LatencyStats:
    """Summarise samples (seconds) as percentiles in ms and items per second."""
    ms = np.asarray(samples_s) * 1000.0
    p50 = float(np.percentile(ms, 50))
    return LatencyStats(
        name=name,
        runs=len(ms),
        batch_size=batch_size,
        p50_ms=p50,
        p25_ms=float(np.percentile(ms, 25)),
        p75_ms=float(np.percentile(ms, 75)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        stdev_ms=float(ms.std()),
        throughput=batch_size * 1000.0 / p50 if p50 > 0 else float("inf"),
    )


def measure_interleaved(
    runners: Mapping[str, Callable[[], object]],
    config: LatencyConfig,
    batch_size: int = 1,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, LatencyStats]:
    """Time every runner in the same rounds; stop, after at least 3 rounds, at ``max_seconds``.

    ``on_round`` (e.g. a progress bar) is called with the number of rounds done after each.
    """
    names = list(runners)
    for name in names:
        for _ in range(config.warmup):
            runners[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    # A fresh order every round: with a fixed rotation the same runner always follows the
    # same neighbour, and PyTorch's OpenMP threads keep spinning for milliseconds after it
    # returns, which slowed whichever graph came next by up to 8%.
    order = np.random.default_rng(0)
    start = time.perf_counter()
    for round_index in range(config.rounds):
        for name in order.permutation(names).tolist():
            t0 = time.perf_counter()
            runners[name]()
            samples[name].append(time.perf_counter() - t0)
        if on_round is not None:
            on_round(round_index + 1)
        if round_index >= 2 and time.perf_counter() - start > config.max_seconds:
            break
    return {n: stats(n, samples[n], batch_size) for n in names}
