"""The stability benchmark: back-to-back conversions and whether their choice flips."""

from __future__ import annotations

from benchmarks.stability import Run, Stability, measure
from tests.fixtures.models import Zoo


def _run(pick: str | None, code: int = 0) -> Run:
    return Run(exit_code=code, recommended=pick, reason=f"recommended: {pick}", variants=())


def test_stability_is_stable_only_when_every_run_picks_the_same_variant():
    assert Stability(checkpoint="m", runs=(_run("cpu-int8"), _run("cpu-int8"))).stable
    assert not Stability(checkpoint="m", runs=(_run("cpu-int8"), _run("fp32"))).stable
    assert not Stability(checkpoint="m", runs=(_run(None, 3), _run(None, 3))).stable
    assert "the choice FLIPS" in Stability(checkpoint="m",
                                           runs=(_run("a"), _run("b"))).markdown()


def test_measure_converts_in_fresh_processes(model_zoo: Zoo):
    result = measure(str(model_zoo.custom_pt2), runs=2, extra=("--sweep", "off"))
    assert len(result.runs) == 2
    assert all(r.exit_code == 0 and r.recommended for r in result.runs)
    assert all(r.reason.startswith("recommended:") for r in result.runs)
    assert "| run | exit | recommended |" in result.markdown()
