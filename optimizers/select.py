"""The accuracy-budgeted choice: the fastest variant within budget, never one slower than fp32.

Rules, in order, for each measured candidate:
1. Built for another device than the target: not eligible (its speed here means nothing).
2. Outside the accuracy budget: not eligible; the first failing check is the reason.
3. Speed is the latency ratio to the original, paired per round, with its confidence
   interval (``benchmarks.latency.RatioEstimate``); without one, the cost (lower is
   better: the median latency of a forward graph, the time per token of a generation loop).
4. One variant is faster than another only when it is ``clearly_faster``: their ratio to
   each other, paired per round in the same run (``Measured.versus``), lies wholly below
   one and its median more than ``TIE`` (3%) below. Without that pairing, their intervals
   to the original must not overlap and the point estimates must differ by ``TIE``.
5. The fastest eligible candidate and every candidate not clearly slower than it form the
   tie; the tie is broken by, in order: higher task metric, more identical generations
   (generation loops), higher min cosine, lower max abs diff, smaller file, then the faster
   point estimate and the name. Timing noise decides nothing that these figures can decide.
6. A winner not clearly faster than the exported fp32 graph loses to it.
The reasons say which of these rules decided, with the figures that decided it. The int8
search (``optimizers.int8_search``) judges its candidates by the same ``clearly_faster``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class Paired(NamedTuple):
    """One runner's time over another's, paired per round: the median and its interval.

    ``benchmarks.latency.RatioEstimate`` has the same three fields and serves as one.
    """

    ratio: float
    low: float
    high: float


class PairedRatio(Protocol):
    """A paired ratio and its interval: a ``Paired`` or a ``RatioEstimate``."""

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios (a's time over b's)."""

    @property
    def low(self) -> float:
        """The interval's lower end."""

    @property
    def high(self) -> float:
        """The interval's upper end."""


TIE = 0.03
"""Paired ratios within 3% of one are ties: closer is timing noise, whatever the interval."""


def clearly_faster(paired: PairedRatio, tie: float = TIE) -> bool:
    """Whether a paired ratio (a's time over b's) says a is faster beyond noise.

    The whole interval must lie below one (as fast as far as the measurement can tell
    otherwise), and the median more than ``tie`` below it (a gain that small flips from
    run to run on a shared machine).
    """
    return paired.high < 1.0 and paired.ratio < 1.0 - tie


@dataclass(frozen=True, kw_only=True)
class Measured:
    """A candidate's measured facts, as the decision needs them."""

    name: str
    precision: str
    device: str
    failures: tuple[str, ...]
    cost: float | None  # lower is better: p50 ms of a forward graph, ms per generated token
    ratio: float | None = None  # latency over the original's, paired per round; lower: faster
    ratio_low: float | None = None
    ratio_high: float | None = None
    task_metric: float | None = None
    identical: float | None = None  # share of generations token-identical to the original's
    min_cosine: float | None = None
    max_abs_diff: float | None = None
    size_bytes: int | None = None
    # This candidate's time over another's (by name), paired per round in the same run.
    versus: Mapping[str, Paired] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the candidate stayed within its accuracy budget."""
        return not self.failures


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The recommended variant (None when nothing qualifies) and why each was or was not chosen."""

    recommended: str | None
    reasons: Mapping[str, str]


COULD_NOT_RUN = "could not run: "
"""How a failure that is not about accuracy (a graph that does not load or run) begins."""

# The tie-break: label, the figure, and whether higher is better.
TIE_BREAK: tuple[tuple[str, Callable[[Measured], float | None], bool], ...] = (
    ("task metric", lambda c: c.task_metric, True),
    ("identical generations", lambda c: c.identical, True),
    ("min cosine", lambda c: c.min_cosine, True),
    ("max abs diff", lambda c: c.max_abs_diff, False),
    ("size", lambda c: None if c.size_bytes is None else float(c.size_bytes), False),
)


def measured_from(record: Any) -> Measured:
    """A bundle's variant record (``VariantRecord``) as the decision needs it."""
    latency = record.latency or {}
    ratio = latency.get("ratio_to_reference") or {}
    parity = [p for p in record.parity if p.shape_match]
    cosines = [p.min_cosine for p in parity if p.min_cosine is not None]
    diffs = [p.max_abs_diff for p in parity]
    return Measured(
        name=record.name, precision=record.precision, device=record.device,
        failures=tuple(record.failures), cost=latency.get("p50_ms"),
        ratio=ratio.get("ratio"), ratio_low=ratio.get("low"), ratio_high=ratio.get("high"),
        task_metric=record.task_metric, min_cosine=min(cosines) if cosines else None,
        max_abs_diff=max(diffs) if diffs else None, size_bytes=record.size_bytes or None,
        versus={name: Paired(p["ratio"], p["low"], p["high"])
                for name, p in (latency.get("paired") or {}).items()},
    )


class _Speed:
    """Each candidate's speed figure and interval: ratios when all have one, else p50."""

    def __init__(self, candidates: Sequence[Measured], tie: float,
                 describe: Callable[[float], str]) -> None:
        self.use_ratio = all(c.ratio is not None for c in candidates)
        self.tie = tie
        self.describe = describe

    def point(self, c: Measured) -> float:
        return float((c.ratio if self.use_ratio else c.cost) or 0.0)

    def interval(self, c: Measured) -> tuple[float, float]:
        point = self.point(c)
        if not self.use_ratio:
            return point, point
        return float(c.ratio_low or point), float(c.ratio_high or point)

    def faster(self, a: Measured, b: Measured) -> bool:
        """Whether ``a`` is clearly faster than ``b`` (rule 4)."""
        if b.name in a.versus:
            return clearly_faster(a.versus[b.name], self.tie)
        apart = self.interval(a)[1] < self.interval(b)[0]
        return apart and self.point(a) < self.point(b) * (1 - self.tie)

    def tied(self, a: Measured, b: Measured) -> bool:
        """Whether neither is clearly faster than the other."""
        return not self.faster(a, b) and not self.faster(b, a)

    def paired_text(self, a: Measured, b: Measured) -> str:
        """``; paired 0.95 [0.93, 0.97] of B's time`` where the run paired them, else ``""``."""
        p = a.versus.get(b.name)
        if p is None:
            return ""
        return f"; paired, {p.ratio:.3f} [{p.low:.3f}, {p.high:.3f}] of {b.name}'s time"

    def text(self, c: Measured) -> str:
        if not self.use_ratio:
            return self.describe(self.point(c))
        low, high = self.interval(c)
        return f"{1 / self.point(c):.2f}x the original [{1 / high:.2f}, {1 / low:.2f}]"


def _order_key(c: Measured, speed: _Speed) -> tuple[Any, ...]:
    """Sort key: best tie-break figures first, a missing figure last."""
    key: list[Any] = []
    for _, figure, higher in TIE_BREAK:
        value = figure(c)
        key.append((value is None, 0.0 if value is None else (-value if higher else value)))
    return (*key, speed.point(c), c.name)


def _decided_by(winner: Measured, other: Measured) -> str:
    """Why ``winner`` beat ``other`` in a tie: the first figure that differs, and the equal ones."""
    equal = []
    for label, figure, higher in TIE_BREAK:
        a, b = figure(winner), figure(other)
        if a == b:
            if a is not None:
                equal.append(label)
            continue
        if a is None or b is None:
            return f"{label} measured only for {winner.name if b is None else other.name}"
        better = "higher" if higher else "lower" if label != "size" else "smaller"
        prefix = f"equal {', '.join(equal)}; " if equal else ""
        shown = _figure(a, label), _figure(b, label)
        if shown[0] == shown[1]:  # apart only past the usual digits: show where they differ
            shown = f"{a:.12g}", f"{b:.12g}"
        return f"{prefix}{better} {label} ({shown[0]} vs {shown[1]})"
    prefix = f"equal {', '.join(equal)}; " if equal else ""
    return f"{prefix}faster point estimate"


def _figure(value: float, label: str) -> str:
    if label == "size":
        return f"{value / 1e6:.2f} MB"
    if label == "max abs diff":
        return f"{value:.3g}"
    return f"{value:.6f}"


def p50(cost: float) -> str:
    """A forward graph's cost as reasons print it."""
    return f"p50 {cost:.2f} ms"


def choose(
    candidates: Sequence[Measured], *, device: str, baseline: str, tie: float = TIE,
    describe: Callable[[float], str] = p50,
) -> Decision:
    """Apply the rules above; ``baseline`` names the plain fp32 export among ``candidates``.

    ``describe`` prints a cost in the reasons when there are no ratios (``p50 3.20 ms``,
    ``350.1 tokens/s``).
    """
    reasons: dict[str, str] = {}
    eligible: list[Measured] = []
    for c in candidates:
        if c.device != device:
            reasons[c.name] = f"built for {c.device}; not eligible on {device}"
        elif not c.passed and c.failures[0].startswith(COULD_NOT_RUN):
            reasons[c.name] = c.failures[0]
        elif not c.passed:
            reasons[c.name] = f"outside the accuracy budget: {c.failures[0]}"
        elif c.cost is None and c.ratio is None:
            reasons[c.name] = "not timed"
        else:
            eligible.append(c)
    if not eligible:
        return Decision(recommended=None, reasons=reasons)
    speed = _Speed(eligible, tie, describe)
    eligible.sort(key=lambda c: (speed.point(c), c.name))
    fastest = eligible[0]
    tied = [c for c in eligible if speed.tied(c, fastest)]
    winner = min(tied, key=lambda c: _order_key(c, speed))
    base = next((c for c in eligible if c.name == baseline), None)
    lost_to_base = base is not None and winner is not base and not speed.faster(winner, base)
    if lost_to_base and base is not None:
        reasons[winner.name] = (f"within budget but not clearly faster than {baseline} "
                                f"({speed.text(winner)} vs {speed.text(base)}"
                                f"{speed.paired_text(winner, base)})")
        winner = base
    margin = f"neither clearly faster: paired interval not below one or within {tie:.0%}"
    for c in eligible:
        if c is winner:
            if c is base and lost_to_base:
                reasons[c.name] = (f"recommended: no variant clearly faster than it "
                                   f"({speed.text(c)})")
            elif len(tied) > 1 and c in tied:
                others = [o for o in tied if o is not c]
                reasons[c.name] = (
                    f"recommended: tied on speed with {', '.join(o.name for o in others)} "
                    f"({margin}), {speed.text(c)}; "
                    + "; ".join(f"vs {o.name}: {_decided_by(c, o)}" for o in others)
                )
            else:
                reasons[c.name] = f"recommended: fastest within budget, {speed.text(c)}"
        elif c.name in reasons:
            continue
        elif c in tied and not lost_to_base:
            reasons[c.name] = (f"within budget and tied on speed with {winner.name} ({margin}), "
                               f"{speed.text(c)}{speed.paired_text(c, winner)}; "
                               f"{winner.name} won on {_decided_by(winner, c)}")
        elif base is not None and c is not base and not speed.faster(c, base):
            slower = f"slower than {baseline}, " if speed.faster(base, c) else ""
            reasons[c.name] = (f"within budget but not clearly faster than {baseline}: "
                               f"{slower}{speed.text(c)} vs {speed.text(base)}"
                               f"{speed.paired_text(c, base)}")
        else:
            reasons[c.name] = (f"within budget but slower than {winner.name} "
                               f"({speed.text(c)} vs {speed.text(winner)}"
                               f"{speed.paired_text(c, winner)})")
    return Decision(recommended=winner.name, reasons=reasons)


BROKEN_COSINE = 0.9  # an export this far from the original is broken, not merely imprecise


def broken_graph(parity: Sequence[Any]) -> str | None:
    """Why an fp32 export is too broken to optimise or time, or None when it is not.

    Broken: an output whose shape differs, that holds NaN/Inf where the original does not,
    whose difference is not finite, or whose min cosine is below ``BROKEN_COSINE``.
    """
    for r in parity:
        where = f"{r.name} (check {r.check})"
        if not r.shape_match:
            return f"{where}: shape differs from the original's"
        if r.nonfinite or r.max_abs_diff != r.max_abs_diff or r.max_abs_diff == float("inf"):
            return f"{where}: max abs diff {r.max_abs_diff:g}, {r.nonfinite} NaN/Inf value(s)"
        if r.min_cosine is not None and r.min_cosine < BROKEN_COSINE:
            return f"{where}: min cosine {r.min_cosine:.4f}"
    return None
