"""The accuracy-budgeted choice: the fastest variant within budget, never one slower than fp32.

Rules, in order, for each measured candidate:
1. Built for another device than the target: not eligible (its speed here means nothing).
2. Outside the accuracy budget: not eligible; the first failing check is the reason.
3. Among the rest, the lowest cost wins (median latency for a forward graph, time per
   generated token for a generation loop); but variants within ``tie`` (3%) of that cost
   are a tie, which the more accurate one wins (higher task metric, else higher min
   cosine, or share of identical generations): a difference inside timing noise should
   not cost accuracy.
4. A winner not faster than the exported fp32 graph loses to it: fp32 is recommended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Measured:
    """A candidate's measured facts, as the decision needs them."""

    name: str
    precision: str
    device: str
    failures: tuple[str, ...]
    cost: float | None  # lower is better: p50 ms of a forward graph, ms per generated token
    accuracy: float | None = None  # task metric, else min cosine: higher is closer

    @property
    def passed(self) -> bool:
        """Whether the candidate stayed within its accuracy budget."""
        return not self.failures


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The recommended variant (None when nothing qualifies) and why each was or was not chosen."""

    recommended: str | None
    reasons: Mapping[str, str]


TIE = 0.03


def p50(cost: float) -> str:
    """A forward graph's cost as reasons print it."""
    return f"p50 {cost:.2f} ms"


def choose(
    candidates: Sequence[Measured], *, device: str, baseline: str, tie: float = TIE,
    describe: Callable[[float], str] = p50,
) -> Decision:
    """Apply the rules above; ``baseline`` names the plain fp32 export among ``candidates``.

    ``describe`` prints a cost in the reasons (``p50 3.20 ms``, ``4.1 ms/token``).
    """
    reasons: dict[str, str] = {}
    eligible: list[Measured] = []
    for c in candidates:
        if c.device != device:
            reasons[c.name] = f"built for {c.device}; not eligible on {device}"
        elif not c.passed:
            reasons[c.name] = f"outside the accuracy budget: {c.failures[0]}"
        elif c.cost is None:
            reasons[c.name] = "not timed"
        else:
            eligible.append(c)
    if not eligible:
        return Decision(recommended=None, reasons=reasons)
    eligible.sort(key=lambda c: c.cost or 0.0)
    fastest = eligible[0].cost or 0.0
    tied = [c for c in eligible if (c.cost or 0.0) <= fastest * (1 + tie)]
    winner = max(tied, key=lambda c: float("-inf") if c.accuracy is None else c.accuracy)
    base = next((c for c in eligible if c.name == baseline), None)
    if (
        base is not None
        and winner.name != baseline
        and not (winner.cost or 0) < (base.cost or 0)
    ):
        winner = base
    for c in eligible:
        if c is winner:
            if c.name == baseline and len(eligible) > 1:
                reasons[c.name] = (
                    f"recommended: no other variant beat it, {describe(c.cost or 0.0)}"
                )
            elif c is not eligible[0]:
                reasons[c.name] = (
                    f"recommended: as fast as {eligible[0].name} within {tie:.0%} "
                    f"({describe(c.cost or 0.0)}) and more accurate"
                )
            else:
                reasons[c.name] = f"recommended: fastest within budget, {describe(c.cost or 0.0)}"
        elif c in tied and winner is not base:
            reasons[c.name] = (
                f"within budget and within {tie:.0%} of the fastest, but less "
                f"accurate than {winner.name} ({describe(c.cost or 0.0)})"
            )
        elif base is not None and c is not base and not (c.cost or 0) < (base.cost or 0):
            slower = f"slower than {baseline}, " if (c.cost or 0) > (base.cost or 0) else ""
            reasons[c.name] = (
                f"within budget but not faster than {baseline}: {slower}"
                f"{describe(c.cost or 0.0)} vs {describe(base.cost or 0.0)}"
            )
        else:
            reasons[c.name] = (
                f"within budget but slower than {winner.name} "
                f"({describe(c.cost or 0.0)} vs {describe(winner.cost or 0.0)})"
            )
    return Decision(recommended=winner.name, reasons=reasons)
