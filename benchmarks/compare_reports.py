"""Compare a new report with a baseline report: speed-up ratios and parity, noise-aware.

Absolute times differ from machine to machine, so only speed-ups (ratios to the original,
measured in the same run) are compared, on a log scale (a ratio of ratios). A slowdown
counts as a regression only when it is beyond both the threshold and the runs' own spread:
``noise_sigmas`` times the combined relative standard error of the two speed-ups
(``speedup_spread`` in each report, from the interquartile range of the timings). Parity
regresses when a variant's min cosine or task metric drops by more than
``max_parity_drop``, or a variant that passed now fails.

Speed-ups of int8 and fused graphs depend on the instruction set (AVX-512 VNNI or only
AVX2) and on the thread count, so ``compare`` also lists how the two machines differ in
those (``hardware``); the processor's name alone differing is only a note.

Measuring is separate from deciding: ``compare`` lists every regression and hardware
difference; the caller (the ``convert-model compare`` command) turns them into an exit code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """Thresholds: the largest tolerated slowdown and parity drop, and the noise band width."""

    max_slowdown: float = 0.10
    max_parity_drop: float = 0.001
    noise_sigmas: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_slowdown < 1.0:
            raise ValueError(f"max_slowdown must be in [0, 1), got {self.max_slowdown!r}")
        if not self.max_parity_drop >= 0.0:
            raise ValueError(f"max_parity_drop must be >= 0, got {self.max_parity_drop!r}")
        if not self.noise_sigmas >= 0.0:
            raise ValueError(f"noise_sigmas must be >= 0, got {self.noise_sigmas!r}")


@dataclass(frozen=True, kw_only=True)
class VariantDiff:
    """One variant in both reports (or one of them), and what changed."""

    name: str
    baseline: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    slowdown: float | None  # 1 - new speed-up / baseline speed-up; negative is faster
    noise: float | None  # the log-ratio the runs' spread alone could explain
    regressions: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Every variant's diff, every regression (one line each), and the thresholds used."""

    config: CompareConfig
    variants: tuple[VariantDiff, ...]
    regressions: tuple[str, ...]
    notes: tuple[str, ...]
    hardware: tuple[str, ...] = ()  # how the machines differ in ISA or threads

    @property
    def ok(self) -> bool:
        """Whether nothing regressed."""
        return not self.regressions

    def markdown(self) -> str:
        """A Markdown diff table, with the verdict first."""
        return render_markdown(self)


def _cosine(variant: Mapping[str, Any] | None) -> float | None:
    parity = (variant or {}).get("parity") or {}
    value = parity.get("min_cosine")
    return float(value) if value is not None else None


def _diff(
    name: str,
    baseline: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    config: CompareConfig,
) -> VariantDiff:
    regressions: list[str] = []
    notes: list[str] = []
    slowdown = noise = None
    if baseline is None or new is None:
        notes.append("new variant" if baseline is None else "absent from the new report")
        return VariantDiff(
            name=name,
            baseline=baseline,
            new=new,
            slowdown=None,
            noise=None,
            regressions=(),
            notes=tuple(notes),
        )
    if baseline.get("status") == "pass" and new.get("status") != "pass":
        first = (new.get("failures") or ["no detail"])[0]
        regressions.append(f"{name}: now outside its accuracy budget ({first})")
    old_speed, new_speed = baseline.get("speedup"), new.get("speedup")
    if old_speed and new_speed:
        slowdown = 1.0 - float(new_speed) / float(old_speed)
        log_drop = math.log(float(old_speed) / float(new_speed))
        spread = math.hypot(
            float(baseline.get("speedup_spread") or 0.0), float(new.get("speedup_spread") or 0.0)
        )
        # Relative standard errors are standard errors of the log, so the band is in logs.
        noise = config.noise_sigmas * spread
        beyond_threshold = log_drop > -math.log1p(-config.max_slowdown)
        if beyond_threshold and log_drop > noise:
            regressions.append(
                f"{name}: speed-up {new_speed:.2f}× vs baseline {old_speed:.2f}× "
                f"(slower by {slowdown:.0%}; threshold {config.max_slowdown:.0%}, "
                f"noise ±{noise:.0%})"
            )
        elif beyond_threshold:
            notes.append(
                f"{name}: slower by {slowdown:.0%}, but within the runs' noise (±{noise:.0%})"
            )
    elif old_speed and not new_speed:
        notes.append(f"{name}: not timed in the new report")
    for label, old_value, new_value in (
        ("min cosine", _cosine(baseline), _cosine(new)),
        ("task metric", baseline.get("task_metric"), new.get("task_metric")),
    ):
        if old_value is None or new_value is None:
            continue
        drop = float(old_value) - float(new_value)
        if drop > config.max_parity_drop:
            regressions.append(
                f"{name}: {label} {new_value:.6f} vs baseline {old_value:.6f} "
                f"(drop {drop:.6f} > {config.max_parity_drop:g})"
            )
    return VariantDiff(
        name=name,
        baseline=baseline,
        new=new,
        slowdown=slowdown,
        noise=noise,
        regressions=tuple(regressions),
        notes=tuple(notes),
    )


def compare(
    new: Mapping[str, Any],
    baseline: Mapping[str, Any],
    max_slowdown: float = 0.10,
    max_parity_drop: float = 0.001,
    *,
    noise_sigmas: float = 2.0,
) -> Comparison:
    """Compare two report objects (``benchmarks.report.read_report``) variant by variant.

    Args:
        new: the report under test.
        baseline: the report it must not be worse than.
        max_slowdown: the largest tolerated relative drop of a speed-up (0.10 = 10%).
        max_parity_drop: the largest tolerated drop of min cosine or of the task metric.
        noise_sigmas: how many combined standard errors of the speed-ups a slowdown must
            also exceed to count.
    """
    config = CompareConfig(
        max_slowdown=max_slowdown, max_parity_drop=max_parity_drop, noise_sigmas=noise_sigmas
    )
    old_by_name = {v["name"]: v for v in baseline["variants"]}
    new_by_name = {v["name"]: v for v in new["variants"]}
    names = list(new_by_name) + [n for n in old_by_name if n not in new_by_name]
    diffs = tuple(_diff(n, old_by_name.get(n), new_by_name.get(n), config) for n in names)
    regressions = [line for d in diffs for line in d.regressions]
    notes = [line for d in diffs for line in d.notes]
    if baseline.get("status") == "pass" and new.get("status") != "pass":
        regressions.insert(0, "the conversion now fails a gate (status fail)")
    if baseline.get("recommended") != new.get("recommended"):
        notes.insert(
            0,
            f"recommended variant changed: {baseline.get('recommended')} → "
            f"{new.get('recommended')}",
        )
    old_cpu = ((baseline.get("machine") or {}).get("cpu") or {}).get("processor")
    new_cpu = ((new.get("machine") or {}).get("cpu") or {}).get("processor")
    if old_cpu != new_cpu:
        notes.append(f"measured on different CPUs: baseline {old_cpu}, new {new_cpu}")
    hardware = hardware_differences(new, baseline)
    notes += list(hardware)
    return Comparison(config=config, variants=diffs, regressions=tuple(regressions),
                      notes=tuple(notes), hardware=hardware)


def hardware_differences(new: Mapping[str, Any], baseline: Mapping[str, Any]) -> tuple[str, ...]:
    """How the two reports' machines differ in instruction sets or threads, one line each."""
    old_machine, new_machine = baseline.get("machine") or {}, new.get("machine") or {}
    lines = []
    old_isa = set((old_machine.get("cpu") or {}).get("instructions") or ())
    new_isa = set((new_machine.get("cpu") or {}).get("instructions") or ())
    if old_isa != new_isa:
        only_old, only_new = sorted(old_isa - new_isa), sorted(new_isa - old_isa)
        lines.append(
            "instruction sets differ: "
            + "; ".join(part for part in (
                f"only the baseline has {', '.join(only_old)}" if only_old else "",
                f"only the new report has {', '.join(only_new)}" if only_new else "",
            ) if part)
        )
    if old_machine.get("threads") != new_machine.get("threads"):
        lines.append(f"thread counts differ: baseline {old_machine.get('threads')}, "
                     f"new {new_machine.get('threads')}")
    return tuple(lines)


def _speed(v: Mapping[str, Any] | None) -> str:
    return f"{v['speedup']:.2f}×" if v and v.get("speedup") else "–"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def render_markdown(result: Comparison) -> str:
    """The verdict, then one row per variant: speed-up, change, noise, cosine, metric, verdict."""
    c = result.config
    verdict = (
        f"**❌ {len(result.regressions)} regression(s)**"
        if result.regressions
        else "**✅ no regression**"
    )
    lines = [
        f"## convert-model compare: {verdict}",
        "",
        f"Thresholds: slowdown > {c.max_slowdown:.0%} and beyond {c.noise_sigmas:g}σ of the "
        f"runs' spread; parity drop > {c.max_parity_drop:g}. Speed-ups are ratios to the "
        "original measured in the same run.",
        "",
        "| variant | status | speed-up (baseline → new) | change | noise ± | "
        "min cosine (baseline → new) | task metric (baseline → new) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in result.variants:
        old, new = d.baseline, d.new
        status = f"{(old or {}).get('status', '–')} → {(new or {}).get('status', '–')}"
        change = "–" if d.slowdown is None else f"{-d.slowdown:+.1%}"
        if d.regressions:
            verdict_cell = "❌ regression"
        elif d.notes and d.slowdown is not None:
            verdict_cell = "⚠️ within noise"
        elif d.notes:
            verdict_cell = d.notes[0]
        else:
            verdict_cell = "✅ ok"
        lines.append(
            f"| {d.name} | {status} | {_speed(old)} → {_speed(new)} | {change} | "
            f"{_fmt(d.noise, '.1%')} | {_fmt(_cosine(old), '.6f')} → {_fmt(_cosine(new), '.6f')} | "
            f"{_fmt((old or {}).get('task_metric'), '.4f')} → "
            f"{_fmt((new or {}).get('task_metric'), '.4f')} | {verdict_cell} |"
        )
    if result.regressions:
        lines += ["", "Regressions:", ""] + [f"- {line}" for line in result.regressions]
    if result.notes:
        lines += ["", "Notes:", ""] + [f"- {line}" for line in result.notes]
    return "\n".join(lines) + "\n"


def parse_fraction(text: str) -> float:
    """``10%`` or ``0.1`` as 0.1; raise ValueError naming the text otherwise."""
    value = text.strip()
    try:
        return float(value[:-1]) / 100.0 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a fraction (0.1) or a percentage (10%)") from None
