"""The int8 search: which candidate to build next, when to drop one, when to stop.

Deciding only; the caller builds and measures (``benchmarks.int8_probe``). Rules:
- Candidates are tried in the order given (``presets.INT8_SEARCH``). A mixed-precision
  candidate is tried with 2, 4, 8, 16 of its ranking's worst nodes protected (no more
  than the ranking holds), until one is within budget; the others once.
- Each build is first timed in a short paired run with fp32 and the best candidate within
  budget so far, and judged by the final choice's rule (``select.clearly_faster``: the
  paired ratio's interval below one and its median 3% below). Not clearly faster than fp32
  on this CPU: dropped, with no accuracy measured; for a mixed candidate the larger
  protections are dropped too (more protection is only slower). Unless int8 was asked for
  (``require_faster`` off): then it is judged like any other.
- Not clearly faster than the best candidate within budget so far: dropped, before its
  accuracy costs anything. A candidate as fast as an earlier one never replaces it, so
  the search's pick does not flip with timing noise.
- Then the screen (parity on the sample feeds), then, for one that passes it, parity on
  the check inputs and the eval set; the first within budget becomes the best so far.
  The screen sees fewer rows than the eval set, so it passes some that the eval set fails;
  once one has, a later candidate goes on to the eval set only if its screen closeness
  (worst cosine) beats that one's: the screen is calibrated by the eval set it stood for.
- Before each build the time spent is checked (``spent_s`` before the search, e.g. by the
  rest of the optimise stage, included, but never more than ``budget_s`` less
  ``min_share`` of it: the search always has that share, so it tries at least one
  candidate): when it plus the longest step so far would pass ``budget_s``, the search
  stops and says before which candidate.
- Every step is recorded with what was measured and why the search went on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from optimizers.select import PairedRatio, clearly_faster


@dataclass(frozen=True, kw_only=True)
class Int8SearchConfig:
    """The search's limits."""

    budget_s: float = 60.0
    protect_counts: tuple[int, ...] = (2, 4, 8, 16)
    min_share: float = 0.5  # of the budget the search keeps, whatever was spent before it
    # False when the user asked for int8 (--precision int8): a candidate no faster than fp32
    # is still the int8 they asked for, so it is judged rather than dropped.
    require_faster: bool = True

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise ValueError(f"budget_s must be > 0 seconds, got {self.budget_s}")
        if not self.protect_counts or any(c < 1 for c in self.protect_counts):
            raise ValueError(f"protect_counts must be counts >= 1, got {self.protect_counts}")
        if not 0 < self.min_share <= 1:
            raise ValueError(f"min_share must be in (0, 1], got {self.min_share}")


class Candidates(Protocol):
    """What the search asks of its caller for one candidate build."""

    def build(self, name: str, protected: int) -> Any:
        """Build candidate ``name`` with its ``protected`` most sensitive nodes protected."""

    def ratio(self, built: Any, rival: Any) -> tuple[PairedRatio, PairedRatio | None]:
        """Its time over fp32's, and over ``rival``'s (a build; None: no rival), paired."""

    def screen(self, built: Any) -> tuple[tuple[str, ...], float]:
        """Budget failures on the sample feeds, and the closeness there (worst cosine)."""

    def parity(self, built: Any) -> tuple[str, ...]:
        """Budget failures on the check inputs and the eval set."""

    def discard(self, built: Any) -> None:
        """Delete a build that is not kept."""


@dataclass(frozen=True, kw_only=True)
class Step:
    """One candidate build and the verdict on it."""

    candidate: str
    protected: int
    outcome: str  # within budget | outside budget | not faster than fp32 | ... | build failed
    ratio: float | None = None
    failures: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {"candidate": self.candidate, "protected": self.protected,
                "outcome": self.outcome,
                "latency_vs_fp32": None if self.ratio is None else round(self.ratio, 4),
                "failures": list(self.failures[:3]), "seconds": round(self.seconds, 2)}


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """The best build within budget (None if none), its step, every step, and why it stopped."""

    best: Any
    best_step: Step | None
    steps: tuple[Step, ...]
    stopped: str
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {"best": None if self.best_step is None else self.best_step.candidate,
                "protected": None if self.best_step is None else self.best_step.protected,
                "stopped": self.stopped, "seconds": round(self.seconds, 2),
                "steps": [s.to_json() for s in self.steps]}


def search(candidates: Sequence[str], protectable: Callable[[str], int], ops: Candidates,
           config: Int8SearchConfig, *, spent_s: float = 0.0,
           clock: Callable[[], float] = time.monotonic) -> SearchResult:
    """Run the rules above; ``protectable(name)``: how many nodes a candidate may protect.

    0 means the candidate protects none (it is not a mixed-precision one).
    """
    start = clock()
    counted = min(spent_s, config.budget_s * (1 - config.min_share))
    steps: list[Step] = []
    best: Any = None
    best_step: Step | None = None
    longest = 0.0
    missed: list[tuple[str, float]] = []  # (candidate, screen closeness): passed it, failed parity
    for name in candidates:
        available = protectable(name)
        counts = [c for c in config.protect_counts if c <= available] if available else [0]
        for protected in counts:
            if counted + clock() - start + longest > config.budget_s:
                return SearchResult(
                    best=best, best_step=best_step, steps=tuple(steps), seconds=clock() - start,
                    stopped=f"time budget ({config.budget_s:g} s) spent before {name}"
                    + (f" with {protected} protected" if protected else "")
                    + (f" ({counted:.1f} s of it before the search)" if counted else ""))
            began = clock()
            step, built, go_on = _try(name, protected, ops, config, best, best_step, missed)
            step = Step(**{**step.__dict__, "seconds": clock() - began})
            longest = max(longest, step.seconds)
            steps.append(step)
            if step.outcome == "within budget":
                if best is not None:
                    ops.discard(best)
                best, best_step = built, step
            elif built is not None:
                ops.discard(built)
            if not go_on:
                break
    return SearchResult(best=best, best_step=best_step, steps=tuple(steps),
                        seconds=clock() - start, stopped="every candidate tried")


def _try(name: str, protected: int, ops: Candidates, config: Int8SearchConfig,
         best: Any, best_step: Step | None,
         missed: list[tuple[str, float]]) -> tuple[Step, Any, bool]:
    """One step: the record, the build (None if it failed), whether to try more protection."""
    from convert_model.core.errors import OptimizationError

    try:
        built = ops.build(name, protected)
    except OptimizationError as e:
        return Step(candidate=name, protected=protected, outcome="build failed",
                    failures=(str(e),)), None, False
    vs_fp32, vs_best = ops.ratio(built, best)
    ratio = vs_fp32.ratio
    if config.require_faster and not clearly_faster(vs_fp32):
        return Step(candidate=name, protected=protected, ratio=ratio,
                    outcome="not faster than fp32 on this CPU"), built, False
    if best_step is not None and vs_best is not None and not clearly_faster(vs_best):
        return Step(candidate=name, protected=protected, ratio=ratio,
                    outcome=f"not clearly faster than {best_step.candidate} "
                    f"({vs_best.ratio:.3f} [{vs_best.low:.3f}, {vs_best.high:.3f}] of its "
                    "time)"), built, False
    failures, closeness = ops.screen(built)
    if not failures:
        bar = max(missed, key=lambda m: m[1], default=None)
        if bar is not None and closeness <= bar[1]:
            return Step(candidate=name, protected=protected, ratio=ratio,
                        outcome=f"no closer on the sample feeds than {bar[0]}, which missed "
                        "the budget on the eval set"), built, True
        failures = ops.parity(built)
        if not failures:
            return Step(candidate=name, protected=protected, ratio=ratio,
                        outcome="within budget"), built, False
        missed.append((name if not protected else f"{name}-{protected}", closeness))
    return Step(candidate=name, protected=protected, ratio=ratio, outcome="outside budget",
                failures=failures), built, True
