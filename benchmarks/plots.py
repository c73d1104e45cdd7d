"""The report's plots, drawn from a report object with matplotlib's Agg canvas, as PNG bytes.

Figures are built on ``matplotlib.figure.Figure`` directly, not pyplot, so no global figure
state or GUI backend is involved, and the PNGs carry no timestamp.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

_COLORS = ("#444444", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_FLOOR = 1e-12  # zero differences are drawn here on log axes
_DPI = 100


def _figure(width: float, height: float, columns: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _label(name: str, recommended: str | None) -> str:
    if name == "original":
        return "original (PyTorch)"
    return f"{name} (recommended)" if name == recommended else name


def _style(names: Sequence[str]) -> dict[str, str]:
    return {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}


def _runners(points: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for p in points:
        names += [n for n in p["latency"] if n not in names]
    return sorted(names, key=lambda n: n != "original")


def latency_vs_seq(report: Mapping[str, Any]) -> bytes | None:
    """p50 latency against sequence length, one line per runner, at the smallest batch size."""
    sweep = report.get("sweep")
    if not sweep or sweep.get("seq_axis") is None:
        return None
    points = [p for p in sweep["points"] if p["seq_len"] is not None]
    if not points:
        return None
    batch = min(p["batch_size"] for p in points)
    points = [p for p in points if p["batch_size"] == batch]
    names = _runners(points)
    colors = _style(names)
    figure, (ax,) = _figure(6.4, 3.8)
    for name in names:
        xs = [p["seq_len"] for p in points if name in p["latency"]]
        ys = [p["latency"][name]["p50_ms"] for p in points if name in p["latency"]]
        ax.plot(xs, ys, marker="o", color=colors[name], label=_label(name, report["recommended"]))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({p["seq_len"] for p in points}))
    ax.get_xaxis().set_major_formatter("{x:.0f}")
    ax.set_yscale("log")
    ax.set_xlabel(f"sequence length ({sweep['seq_axis']})")
    ax.set_ylabel("p50 latency (ms, log scale)")
    ax.set_title(f"Latency vs sequence length, batch {batch} — lower is better")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _png(figure)


def throughput_vs_batch(report: Mapping[str, Any]) -> bytes | None:
    """Items per second against batch size, one line per runner, one panel per sequence length."""
    sweep = report.get("sweep")
    if not sweep or not sweep["points"]:
        return None
    seqs = sorted({p["seq_len"] for p in sweep["points"]}, key=lambda s: s or 0)
    names = _runners(sweep["points"])
    colors = _style(names)
    figure, axes = _figure(3.4 * len(seqs) + 1.0, 3.6, columns=len(seqs))
    for ax, seq in zip(axes, seqs, strict=True):
        points = [p for p in sweep["points"] if p["seq_len"] == seq]
        for name in names:
            xs = [p["batch_size"] for p in points if name in p["latency"]]
            ys = [p["latency"][name]["throughput"] for p in points if name in p["latency"]]
            ax.plot(
                xs, ys, marker="o", color=colors[name], label=_label(name, report["recommended"])
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({p["batch_size"] for p in points}))
        ax.get_xaxis().set_major_formatter("{x:.0f}")
        ax.set_xlabel("batch size")
        ax.set_title(f"seq {seq}" if seq is not None else "throughput")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("items / s (higher is better)")
    axes[0].legend(fontsize="small")
    figure.suptitle("Throughput vs batch size")
    return _png(figure)


def parity(report: Mapping[str, Any]) -> bytes | None:
    """Per variant, every parity record: 1 - cosine and max abs diff (log scales), with budgets."""
    variants = [v for v in report["variants"] if v.get("parity")]
    if not variants:
        return None
    figure, (left, right) = _figure(9.6, 3.8, columns=2)
    names = [v["name"] for v in variants]
    for i, v in enumerate(variants):
        points = v["parity"]["points"]
        jitter = [i + (k % 5 - 2) * 0.06 for k in range(len(points))]
        color = "#d62728" if v["status"] == "fail" else "#1f77b4"
        cosine = [
            max(1.0 - p["min_cosine"], _FLOOR) if p["min_cosine"] is not None else None
            for p in points
        ]
        shown = [(x, y) for x, y in zip(jitter, cosine, strict=True) if y is not None]
        if shown:
            left.scatter(*zip(*shown, strict=True), s=14, color=color, alpha=0.7)
        diffs = [max(p["max_abs_diff"], _FLOOR) for p in points]
        finite = [(x, y) for x, y in zip(jitter, diffs, strict=True) if y != float("inf")]
        if finite:
            right.scatter(*zip(*finite, strict=True), s=14, color=color, alpha=0.7)
        budget = v["budget"]
        if budget.get("min_cosine") is not None:
            left.hlines(max(1.0 - budget["min_cosine"], _FLOOR), i - 0.3, i + 0.3, color="k")
        if budget.get("max_abs_diff") is not None:
            right.hlines(max(budget["max_abs_diff"], _FLOOR), i - 0.3, i + 0.3, color="k")
    for ax, title in (
        (left, "1 − cosine similarity (per output, per check)"),
        (right, "max abs diff (per output, per check)"),
    ):
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=20, ha="right", fontsize="small")
        ax.set_title(title, fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    left.set_ylabel("lower is closer to the original")
    figure.suptitle("Parity with the original — black bars: budget, red: outside budget")
    return _png(figure)


def render_all(report: Mapping[str, Any]) -> dict[str, bytes]:
    """Every plot that has data, by the key ``benchmarks.report.PLOTS`` names its file with."""
    drawn = {
        "latency_vs_seq": latency_vs_seq(report),
        "throughput_vs_batch": throughput_vs_batch(report),
        "parity": parity(report),
    }
    return {k: v for k, v in drawn.items() if v is not None}
