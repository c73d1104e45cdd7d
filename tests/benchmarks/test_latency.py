"""Paired latency ratios: timed until their interval is as narrow as asked, or a cap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmarks import latency
from benchmarks.latency import LatencyConfig, measure_interleaved, paired_ratio


class FakeClock:
    """perf_counter for the runners below: each call advances it by a chosen duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def runner(self, durations):
        steps = iter(durations)

        def run():
            self.now += next(steps)

        return run


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(latency.time, "perf_counter", fake)
    return fake


def test_paired_ratio_recovers_a_ratio_despite_drift():
    drift = np.linspace(1.0, 3.0, 60)  # the machine slows down threefold during the run
    estimate = paired_ratio(list(0.5 * drift), list(drift))
    assert estimate.ratio == pytest.approx(0.5) and estimate.settled
    assert estimate.low == pytest.approx(0.5) and estimate.high == pytest.approx(0.5)


def test_paired_ratio_interval_covers_a_noisy_ratio():
    rng = np.random.default_rng(3)
    reference = list(rng.uniform(1.0, 2.0, 80))
    noisy = [r * 0.7 * float(np.exp(rng.normal(0, 0.1))) for r in reference]
    estimate = paired_ratio(noisy, reference)
    assert estimate.low < 0.7 < estimate.high and estimate.half_width > 0


def test_measure_interleaved_stops_once_the_ratio_has_settled(clock: FakeClock):
    runners = {"original": clock.runner(itertools.repeat(2.0)),
               "variant": clock.runner(itertools.repeat(1.0))}
    config = LatencyConfig(warmup=0, rounds=12, max_rounds=100, max_seconds=1e9)
    timings = measure_interleaved(runners, config, reference="original")
    ratio = timings["variant"].ratio
    assert ratio is not None and ratio.ratio == pytest.approx(0.5)
    assert ratio.rounds == 15, "first check at a multiple of 5 past the minimum rounds"
    assert timings["variant"].to_json()["ratio_to_reference"]["settled"] is True


def test_measure_interleaved_times_to_the_cap_while_the_ratio_is_unsettled(clock: FakeClock):
    rng = np.random.default_rng(0)
    runners = {"original": clock.runner(itertools.repeat(1.0)),
               "variant": clock.runner(iter(lambda: float(rng.uniform(0.2, 2.0)), None))}
    config = LatencyConfig(warmup=0, rounds=10, max_rounds=40, max_seconds=1e9,
                           precision=0.001)
    timings = measure_interleaved(runners, config, reference="original")
    assert timings["variant"].runs == 40 and timings["variant"].ratio is not None
    assert not timings["variant"].ratio.settled


def test_measure_interleaved_without_a_reference_runs_the_fixed_rounds(clock: FakeClock):
    runners = {"a": clock.runner(itertools.repeat(1.0))}
    timings = measure_interleaved(runners, LatencyConfig(warmup=0, rounds=7, max_seconds=1e9))
    assert timings["a"].runs == 7 and timings["a"].ratio is None


def test_latency_config_validates_precision():
    with pytest.raises(ValueError, match="precision"):
        LatencyConfig(precision=0.0)
    with pytest.raises(ValueError, match="reference 'x' is not a runner"):
        measure_interleaved({"a": lambda: None}, LatencyConfig(), reference="x")


def test_measure_interleaved_also_waits_for_the_pairs_asked_and_versus_pairs_any_two(
        clock: FakeClock):
    # a and b each within 10% of fp32, in opposite directions every round: against fp32
    # each settles to 5% early; against each other the per-round ratio swings twice as far.
    rng = np.random.default_rng(1)
    swings = [float(np.exp(rng.uniform(-0.1, 0.1))) for _ in range(200)]
    runners = {"fp32": clock.runner(itertools.repeat(1.0)),
               "a": clock.runner(iter(swings)), "b": clock.runner(1 / s for s in swings)}
    config = LatencyConfig(warmup=0, rounds=10, max_rounds=200, max_seconds=1e9,
                           precision=0.05)
    alone = measure_interleaved(runners, config, reference="fp32")
    rounds = alone["a"].runs
    assert latency.versus(alone["a"], alone["fp32"], config).settled
    assert not latency.versus(alone["a"], alone["b"], config).settled
    runners = {"fp32": clock.runner(itertools.repeat(1.0)),
               "a": clock.runner(iter(swings)), "b": clock.runner(1 / s for s in swings)}
    both = measure_interleaved(runners, config, reference="fp32", pairs=[("a", "b")])
    assert both["a"].runs > rounds and latency.versus(both["a"], both["b"], config).settled
    assert "samples_s" not in both["a"].to_json()
    with pytest.raises(ValueError, match="not timed in the same rounds"):
        latency.versus(alone["a"], both["b"], config)
