"""The int8 search's rules, on scripted candidates: order, drops, the screen, the budget."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from convert_model.core.errors import OptimizationError
from optimizers.int8_search import Int8SearchConfig, search
from optimizers.presets import INT8_SEARCH, PRESETS
from optimizers.select import Paired


@dataclass
class Scripted:
    """Candidates whose measurements are given: name -> (ratio, screen, closeness, parity).

    Paired ratios get an interval ``width`` either side of the median.
    """

    figures: dict[str, tuple[float, tuple[str, ...], float, tuple[str, ...]]]
    seconds_per_build: float = 1.0
    width: float = 0.01
    now: float = 0.0
    built: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    parity_runs: list[str] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def build(self, name: str, protected: int) -> str:
        self.now += self.seconds_per_build
        label = f"{name}-{protected}" if protected else name
        if label not in self.figures:
            raise OptimizationError(f"{label}: nothing to quantize")
        self.built.append(label)
        return label

    def _paired(self, ratio: float) -> Paired:
        return Paired(ratio, ratio * (1 - self.width), ratio * (1 + self.width))

    def ratio(self, built: str, rival: str | None) -> tuple[Paired, Paired | None]:
        mine = self.figures[built][0]
        return self._paired(mine), None if rival is None else self._paired(
            mine / self.figures[rival][0])

    def screen(self, built: str) -> tuple[tuple[str, ...], float]:
        return self.figures[built][1], self.figures[built][2]

    def parity(self, built: str) -> tuple[str, ...]:
        self.parity_runs.append(built)
        return self.figures[built][3]

    def discard(self, built: str) -> None:
        self.discarded.append(built)


OK: tuple[str, ...] = ()
BAD = ("cosine 0.9 < 0.99",)


def _run(ops: Scripted, candidates: tuple[str, ...], protectable: dict[str, int] | None = None,
         **config: float):
    return search(candidates, lambda n: (protectable or {}).get(n, 0), ops,
                  Int8SearchConfig(**config), clock=ops.clock)  # type: ignore[arg-type]


def test_search_keeps_the_fastest_within_budget_and_discards_the_rest():
    ops = Scripted({"a": (0.5, BAD, 0.9, OK), "b": (0.7, OK, 0.995, OK),
                    "c": (0.6, OK, 0.996, OK)})
    result = _run(ops, ("a", "b", "c"))
    assert result.best == "c" and result.best_step is not None
    assert [s.outcome for s in result.steps] == ["outside budget", "within budget",
                                                 "within budget"]
    assert ops.parity_runs == ["b", "c"], "a failed the screen: no eval-set parity"
    assert ops.discarded == ["a", "b"]
    assert result.stopped == "every candidate tried"


def test_search_drops_a_candidate_not_faster_than_fp32_without_measuring_accuracy():
    ops = Scripted({"slow": (0.99, OK, 1.0, OK), "a": (0.5, OK, 0.995, OK)})
    result = _run(ops, ("slow", "a"))
    assert result.steps[0].outcome == "not faster than fp32 on this CPU"
    assert ops.parity_runs == ["a"] and result.best == "a"


def test_search_drops_a_candidate_not_faster_than_the_best_so_far():
    ops = Scripted({"a": (0.5, OK, 0.995, OK), "b": (0.6, OK, 0.999, OK)})
    result = _run(ops, ("a", "b"))
    assert result.steps[1].outcome.startswith("not clearly faster than a (1.200")
    assert result.best == "a" and ops.parity_runs == ["a"]


def test_search_keeps_the_earlier_of_two_candidates_within_noise_of_each_other():
    # b is 2% faster than a (inside the 3% tie), then 5% faster but with an interval that
    # reaches above one: neither replaces a, so the pick does not flip from run to run.
    for figures, width in (((0.5, 0.49), 0.01), ((0.5, 0.475), 0.06)):
        ops = Scripted({"a": (figures[0], OK, 0.995, OK), "b": (figures[1], OK, 0.999, OK)},
                       width=width)
        result = _run(ops, ("a", "b"))
        assert result.best == "a", figures
        assert result.steps[1].outcome.startswith("not clearly faster than a")
    ops = Scripted({"a": (0.5, OK, 0.995, OK), "b": (0.45, OK, 0.999, OK)})
    assert _run(ops, ("a", "b")).best == "b", "10% faster, tight interval: it replaces a"


def test_search_drops_a_candidate_whose_gain_over_fp32_is_within_noise():
    ops = Scripted({"a": (0.95, OK, 0.995, OK)}, width=0.06)
    result = _run(ops, ("a",))
    assert result.steps[0].outcome == "not faster than fp32 on this CPU" and result.best is None
    assert _run(Scripted({"a": (0.95, OK, 0.995, OK)}, width=0.06), ("a",),
                require_faster=False).best == "a", "int8 asked for: judged, not dropped"


def test_search_protects_more_nodes_until_a_mixed_candidate_is_within_budget():
    ops = Scripted({"m-2": (0.5, BAD, 0.9, OK), "m-4": (0.55, OK, 0.99, BAD),
                    "m-8": (0.6, OK, 0.995, OK), "m-16": (0.7, OK, 1.0, OK)})
    result = _run(ops, ("m",), {"m": 10})
    assert [s.protected for s in result.steps] == [2, 4, 8], "16 > the 10 ranked: not tried"
    assert result.best == "m-8" and result.best_step.protected == 8  # type: ignore[union-attr]


def test_search_skips_the_eval_set_for_a_candidate_no_closer_than_one_that_failed_it():
    ops = Scripted({"a": (0.5, OK, 0.992, BAD), "b": (0.55, OK, 0.991, OK),
                    "c": (0.6, OK, 0.999, OK)})
    result = _run(ops, ("a", "b", "c"))
    assert "no closer on the sample feeds than a" in result.steps[1].outcome
    assert ops.parity_runs == ["a", "c"] and result.best == "c"


def test_search_stops_at_its_time_budget_and_says_before_which_candidate():
    ops = Scripted({"a": (0.5, BAD, 0.9, OK), "b": (0.5, BAD, 0.9, OK),
                    "c": (0.5, OK, 1.0, OK)}, seconds_per_build=4.0)
    result = _run(ops, ("a", "b", "c"), budget_s=10.0)
    assert [s.candidate for s in result.steps] == ["a", "b"]
    assert result.stopped == "time budget (10 s) spent before c"
    assert result.best is None
    assert result.to_json()["steps"][0]["seconds"] == 4.0


def test_search_records_a_failed_build_and_goes_on():
    ops = Scripted({"b": (0.5, OK, 1.0, OK)})
    result = _run(ops, ("a", "b"))
    assert result.steps[0].outcome == "build failed" and "nothing to quantize" in (
        result.steps[0].failures[0])
    assert result.best == "b"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"budget_s": 0}, "budget_s must be > 0"),
    ({"protect_counts": ()}, "protect_counts must be counts >= 1"),
    ({"min_share": 0.0}, "min_share must be in"),
])
def test_int8_search_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Int8SearchConfig(**kwargs)


def test_int8_search_candidates_are_presets_and_only_mixed_ones_need_a_ranking():
    assert set(INT8_SEARCH) <= set(PRESETS)
    assert {n for n in INT8_SEARCH if PRESETS[n].needs_sensitivity} == {
        "cpu-int8-mixed", "cpu-int8-mixed-fp32"}


def test_search_counts_the_time_spent_before_it_against_the_budget_but_keeps_its_share():
    ops = Scripted({"a": (0.5, BAD, 0.9, OK), "b": (0.5, OK, 1.0, OK)}, seconds_per_build=3.0)
    result = search(("a", "b"), lambda n: 0, ops, Int8SearchConfig(budget_s=10.0), spent_s=12.0,
                    clock=ops.clock)  # type: ignore[arg-type]
    # 12 s spent, but the search keeps half the budget: one 3 s step, then 5 + 3 + 3 > 10.
    assert [s.candidate for s in result.steps] == ["a"] and result.best is None
    assert result.stopped == "time budget (10 s) spent before b (5.0 s of it before the search)"
