"""Latency of several runners measured together: warmed up, then interleaved round by round.

Interleaving (every runner once per round, in a fresh seeded order each round) spreads a
noisy neighbour's load, and any runner's after-effects, over every runner alike, so the
ratios between them hold even when absolute times drift.

With a ``reference`` runner, each other runner's speed is a paired statistic: per round,
its time over the reference's time in that same round. The estimate is the median of those
log ratios with a bootstrap confidence interval; timing goes on, past ``rounds``, until
every interval's half-width (relative) is below ``precision`` or ``max_rounds`` is reached.
Each runner keeps its samples, so any two runners of one run can be compared the same way
(``versus``): the choice compares variants with each other, not only with the reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class LatencyConfig:
    """How long to measure: warm-up calls per runner, then rounds (each runner once per round)."""

    warmup: int = 3
    rounds: int = 20
    max_seconds: float = 120.0
    precision: float = 0.02  # target half-width of a ratio's interval, relative (2%)
    max_rounds: int = 200  # with a reference: the cap on rounds while the ratio settles
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.rounds < 1 or self.max_seconds <= 0:
            raise ValueError(f"need warmup >= 0, rounds >= 1, max_seconds > 0; got {self}")
        if not 0 < self.precision < 1 or not 0.5 <= self.confidence < 1:
            raise ValueError(f"need 0 < precision < 1 and 0.5 <= confidence < 1; got {self}")

    @property
    def round_cap(self) -> int:
        """The most rounds a measurement with a reference runs."""
        return max(self.rounds, self.max_rounds)


@dataclass(frozen=True, kw_only=True)
class RatioEstimate:
    """A runner's time over the reference's, paired per round: median and its interval."""

    ratio: float
    low: float
    high: float
    rounds: int
    confidence: float
    precision: float

    @property
    def half_width(self) -> float:
        """Half the interval's width on the log scale (about the relative half-width)."""
        return (math.log(self.high) - math.log(self.low)) / 2

    @property
    def settled(self) -> bool:
        """Whether the interval is as narrow as the precision asked."""
        return self.half_width < self.precision

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {"ratio": round(self.ratio, 5), "low": round(self.low, 5),
                "high": round(self.high, 5), "rounds": self.rounds,
                "confidence": self.confidence, "precision": self.precision,
                "settled": self.settled}


# One candidate of the int8 search against fp32: paired rounds until the ratio is known to
# 3%, at most 80 rounds or 5 s (the search runs under a wall-time budget).
SEARCH_LATENCY = LatencyConfig(warmup=2, rounds=10, max_rounds=80, precision=0.03,
                               max_seconds=5.0)
BOOTSTRAP = 1000


def paired_ratio(samples: list[float], reference: list[float], confidence: float = 0.95,
                 precision: float = 0.02) -> RatioEstimate:
    """Median of per-round ``samples / reference`` with a bootstrap percentile interval."""
    logs = np.log(np.asarray(samples, np.float64)) - np.log(np.asarray(reference, np.float64))
    rng = np.random.default_rng(0)  # the same rounds give the same interval
    resampled = np.median(rng.choice(logs, (BOOTSTRAP, len(logs)), replace=True), axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return RatioEstimate(ratio=float(np.exp(np.median(logs))), low=float(np.exp(low)),
                         high=float(np.exp(high)), rounds=len(logs), confidence=confidence,
                         precision=precision)


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
    ratio: RatioEstimate | None = None  # paired vs the reference runner, when there is one
    samples_s: tuple[float, ...] = field(default=(), repr=False, compare=False)  # per round

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form, rounded for reading."""
        data = {f.name: round(v, 4) if isinstance(v := getattr(self, f.name), float) else v
                for f in fields(self) if f.name not in ("ratio", "samples_s")}
        if self.ratio is not None:
            data["ratio_to_reference"] = self.ratio.to_json()
        return data


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
        samples_s=tuple(samples_s),
    )


def versus(a: LatencyStats, b: LatencyStats, config: LatencyConfig) -> RatioEstimate:
    """``a``'s time over ``b``'s, paired per round: both must come from one interleaved run."""
    if len(a.samples_s) != len(b.samples_s) or not a.samples_s:
        raise ValueError(f"{a.name} and {b.name} were not timed in the same rounds")
    return paired_ratio(list(a.samples_s), list(b.samples_s), config.confidence,
                        config.precision)


def measure_interleaved(
    runners: Mapping[str, Callable[[], object]],
    config: LatencyConfig,
    batch_size: int = 1,
    on_round: Callable[[int], None] | None = None,
    reference: str | None = None,
    pairs: Sequence[tuple[str, str]] = (),
) -> dict[str, LatencyStats]:
    """Time every runner in the same rounds.

    Without ``reference``: ``config.rounds`` rounds, or fewer (at least 3) past
    ``max_seconds``. With it: at least ``rounds``, then on until every other runner's ratio
    to the reference, and the ratio of each of ``pairs`` (first over second), has settled
    (``RatioEstimate.settled``), ``round_cap`` rounds or ``max_seconds``. ``on_round``
    (e.g. a progress bar) is called after each round.
    """
    names = list(runners)
    if reference is not None and reference not in runners:
        raise ValueError(f"reference {reference!r} is not a runner; runners: {names}")
    for name in names:
        for _ in range(config.warmup):
            runners[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    # A fresh order every round: with a fixed rotation the same runner always follows the
    # same neighbour, and PyTorch's OpenMP threads keep spinning for milliseconds after it
    # returns, which slowed whichever graph came next by up to 8%.
    order = np.random.default_rng(0)
    cap = config.rounds if reference is None else config.round_cap
    start = time.perf_counter()
    for round_index in range(cap):
        for name in order.permutation(names).tolist():
            t0 = time.perf_counter()
            runners[name]()
            samples[name].append(time.perf_counter() - t0)
        done = round_index + 1
        if on_round is not None:
            on_round(done)
        if done >= 3 and time.perf_counter() - start > config.max_seconds:
            break
        if reference is not None and done >= config.rounds and done % 5 == 0 and all(
            _ratio(samples, a, b, config).settled
            for a, b in [*((n, reference) for n in names if n != reference), *pairs]
        ):
            break
    return {
        n: replace(stats(n, samples[n], batch_size),
                   ratio=_ratio(samples, n, reference, config) if reference else None)
        for n in names
    }


def _ratio(samples: Mapping[str, list[float]], name: str, reference: str,
           config: LatencyConfig) -> RatioEstimate:
    return paired_ratio(samples[name], samples[reference], config.confidence, config.precision)


def speedup_of(timing: LatencyStats, reference_p50_ms: float) -> float:
    """The reference's time over this runner's: 1 / the paired ratio, else the p50s' ratio."""
    if timing.ratio is not None:
        return round(1.0 / timing.ratio.ratio, 3)
    return round(reference_p50_ms / timing.p50_ms, 3)


def ratio_text(timing: LatencyStats) -> str:
    """``2.41x the original [2.35, 2.47], 40 rounds`` for the console."""
    r = timing.ratio
    if r is None:
        return f"p50 {timing.p50_ms:.2f} ms"
    return (f"{1 / r.ratio:.2f}x the original [{1 / r.high:.2f}, {1 / r.low:.2f}] "
            f"({r.confidence:.0%} interval, {r.rounds} paired rounds)")
