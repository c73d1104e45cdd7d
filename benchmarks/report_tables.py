"""A report's tables as rows of text, built once for both renderings (Markdown and HTML).

The variants (recommended first, the original as the reference row), the gates, the
latency sweep, the footprint and the generation checks; and the headline sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Row = list[str]
PASS, FAIL = "✅ pass", "❌ fail"


def _num(value: float | None, spec: str, dash: str = "–") -> str:
    return dash if value is None else format(value, spec)


def _size(n: int | None) -> str:
    if not n:
        return "–"
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _status(status: str) -> str:
    return PASS if status == "pass" else FAIL


def _shape(shapes: Mapping[str, Sequence[int]] | None) -> str:
    if not shapes:
        return "–"
    first, dims = next(iter(shapes.items()))
    return f"{first} {'×'.join(str(d) for d in dims)}"


def metric_name(report: Mapping[str, Any]) -> str:
    """The task metric's name, or ``task metric`` when no eval set was given."""
    return (report.get("eval") or {}).get("metric") or "task metric"


def headline(report: Mapping[str, Any]) -> list[str]:
    """Two or three sentences: verdict, recommendation, and where it was measured."""
    verdict = "PASS" if report["status"] == "pass" else "FAIL"
    recommended = next((v for v in report["variants"] if v["recommended"]), None)
    lines = []
    if recommended is not None:
        speed = (
            f"{recommended['speedup']:.2f}× the speed of the {report['reference']}"
            if recommended.get("speedup")
            else "not timed"
        )
        metric = ""
        if recommended.get("task_metric") is not None:
            original = report["original"].get("task_metric")
            metric = f", {metric_name(report)} {recommended['task_metric']:.4f}" + (
                f" (original {original:.4f})" if original is not None else ""
            )
        lines.append(f"**{verdict}** — recommended **{recommended['name']}**: {speed}{metric}.")
    else:
        failing = [g["name"] for g in report["gates"] if g["status"] != "pass"]
        lines.append(
            f"**{verdict}** — no variant recommended; failing gates: {', '.join(failing)}."
        )
    machine = report["machine"]
    cpu = machine.get("cpu") or {}
    instructions = ", ".join(cpu.get("instructions") or []) or "no AVX2/VNNI/AMX"
    config = report.get("latency_config") or {}
    wait = machine.get("omp_wait_policy")
    policy = f", PyTorch with OMP_WAIT_POLICY={wait}" if wait else ""
    lines.append(
        f"Measured on {cpu.get('processor', 'unknown CPU')} ({instructions}) with "
        f"{machine.get('threads')} threads, onnxruntime {machine.get('onnxruntime')}{policy}; "
        f"input {_shape(report.get('latency_input'))}{_real(report)}; "
        f"{config.get('rounds_run', config.get('rounds', '?'))} interleaved "
        f"rounds after {config.get('warmup', '?')} warm-up calls."
    )
    precision = config.get("precision")
    lines.append(
        "Speed-ups are ratios to the original measured in the same run, so they hold across "
        "machines of a kind; absolute times (ms) depend on the machine."
        + (f" Each is the median of per-round paired ratios, timed until its "
           f"{config.get('confidence', 0.95):.0%} interval was within ±{precision:.0%} "
           f"(at most {config.get('max_rounds')} rounds)." if precision else "")
    )
    return lines


def variant_rows(report: Mapping[str, Any]) -> tuple[Row, list[Row]]:
    """The main table: one row per variant, recommended first, the original last."""
    header = [
        "variant",
        "status",
        "min cosine",
        "max abs diff",
        "top-1",
        metric_name(report),
        "p50 ms",
        "speed-up",
        "size",
    ]
    rows = []
    for v in report["variants"]:
        parity = v.get("parity") or {}
        name = v["name"] + (" ★ recommended" if v["recommended"] else "")
        if not v["kept"]:
            name += " (not kept)"
        if v["device"] != "cpu" and not v.get("latency"):
            name += f" ({v['device']}, not timed)"
        metric = _num(v.get("task_metric"), ".4f")
        if v.get("task_metric_delta"):
            metric += f" ({v['task_metric_delta']:+.4f})"
        latency = v.get("latency") or {}
        rows.append(
            [
                name,
                _status(v["status"]),
                _num(parity.get("min_cosine"), ".6f"),
                _num(parity.get("max_abs_diff"), ".1e"),
                _num(parity.get("top1_agreement"), ".1%"),
                metric,
                _num(latency.get("p50_ms"), ".2f"),
                _num(v.get("speedup"), ".2f") + ("×" if v.get("speedup") else ""),
                _size(v.get("size_bytes")),
            ]
        )
    original = report["original"]
    rows.append(
        [
            f"{report['reference']}",
            "reference",
            "–",
            "–",
            "–",
            _num(original.get("task_metric"), ".4f"),
            _num((original.get("latency") or {}).get("p50_ms"), ".2f"),
            "1.00×" if original.get("latency") else "–",
            "–",
        ]
    )
    return header, rows


def gate_rows(report: Mapping[str, Any]) -> tuple[Row, list[Row]]:
    """One row per gate: what it checks, the limit, the verdict and the evidence."""
    return ["gate", "result", "limit", "detail"], [
        [g["name"], _status(g["status"]), g["limit"], g["detail"]] for g in report["gates"]
    ]


def _short(error: str, limit: int = 90) -> str:
    """An error cell: the first meaningful line, cut at a word."""
    from convert_model.core.errors import meaningful_lines

    line = (meaningful_lines(error) or [error])[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " …"


def sweep_rows(report: Mapping[str, Any]) -> tuple[Row, list[Row]] | None:
    """Per sweep point, each runner's p50 (ms) and speed-up over the original."""
    sweep = report.get("sweep")
    if not sweep or not sweep["points"]:
        return None
    names: list[str] = []
    for p in sweep["points"]:
        names += [n for n in [*p["latency"], *p.get("errors", {})] if n not in names]
    names.sort(key=lambda n: n != "original")
    header = ["batch × seq", *[n + (" ★" if n == report["recommended"] else "") for n in names]]
    rows = []
    for p in sweep["points"]:
        cells = [f"{p['batch_size']} × {p['seq_len']}" if p["seq_len"] else str(p["batch_size"])]
        for n in names:
            if n not in p["latency"]:
                error = p.get("errors", {}).get(n)
                cells.append(f"error: {_short(error)}" if error else "–")
                continue
            cell = f"{p['latency'][n]['p50_ms']:.2f}"
            if n != "original" and n in p.get("speedup", {}):
                cell += f" ({p['speedup'][n]:.2f}×)"
            cells.append(cell)
        rows.append(cells)
    return header, rows


def footprint_rows(report: Mapping[str, Any]) -> tuple[Row, list[Row]] | None:
    """Per variant with a footprint: file size, cold start, peak memory."""
    variants = [v for v in report["variants"] if v.get("footprint") or v.get("footprint_error")]
    if not variants:
        return None
    header = [
        "variant",
        "file size",
        "cold start ms (session + first run)",
        "peak RSS MB (graph's share)",
    ]
    rows = []
    for v in variants:
        f = v.get("footprint")
        if f is None:
            rows.append([v["name"], _size(v.get("size_bytes")), v["footprint_error"], "–"])
            continue
        rows.append(
            [
                v["name"],
                _size(f["size_bytes"]),
                f"{f['cold_start_ms']:.0f} ({f['session_ms']:.0f} + {f['first_run_ms']:.0f})",
                f"{f['peak_rss_mb']:.0f} (+{f['model_rss_mb']:.0f})",
            ]
        )
    return header, rows


GENERATION_TITLE = "Generation: the bundle's loop (runtime/) vs model.generate"


def generation_rows(report: Mapping[str, Any]) -> tuple[Row, list[Row]] | None:
    """Per generation variant: identical outputs, task scores, TTFT and tokens/s."""
    generation = report.get("generation")
    if not generation:
        return None
    beams = generation["num_beams"]
    header = ["variant", "status", "greedy identical", f"top beam identical ({beams} beams)",
              "token agreement", "exact match", "chrF", "TTFT p50 ms", "tokens/s",
              "tokens/s speed-up", "size"]
    original = generation["original"]
    rows = []
    for g in generation["variants"]:
        scores = g["scores"] or {}
        latency = g["latency"] or {}
        star = " ★" if g["name"] == generation["recommended"] else ""
        rows.append([
            g["name"] + star,
            _status(g["status"]),
            _num(g["greedy_identical"], ".1%"),
            _num(g["beam_identical"], ".1%"),
            _num(scores.get("token_agreement"), ".4f"),
            _num(scores.get("exact_match"), ".4f"),
            _num(scores.get("chrf"), ".2f"),
            _num(latency.get("ttft_p50_ms"), ".2f"),
            _num(latency.get("tokens_per_s"), ".1f"),
            _num(g["speedup"], ".2f") + ("×" if g["speedup"] else ""),
            _size(g["size_bytes"]),
        ])
    scores = original["scores"] or {}
    latency = original["latency"] or {}
    rows.append([
        "original (model.generate)", "–", "–", "–",
        _num(scores.get("token_agreement"), ".4f"),
        _num(scores.get("exact_match"), ".4f"),
        _num(scores.get("chrf"), ".2f"),
        _num(latency.get("ttft_p50_ms"), ".2f"),
        _num(latency.get("tokens_per_s"), ".1f"),
        "1.00×", "–",
    ])
    return header, rows


def generation_lines(report: Mapping[str, Any]) -> list[str]:
    """Sentences under the generation table: the split, the data, the budget."""
    generation = report["generation"]
    split = generation["split"]
    data = (
        f"{generation['examples']} eval examples (scores against their labels)"
        if generation["labelled"]
        else f"{generation['examples']} check inputs (no labels: no task metric)"
    )
    budgets = {g["precision"]: g["budget"] for g in generation["variants"]}
    fp32, quantized = budgets.get("fp32", {}), budgets.get("int8", {})
    lines = [
        f"Graphs: {split['kind']}, {', '.join(split['files'].values())}"
        + (" (one merged decoder for the first and the cached steps)" if split["merged"] else "")
        + f". Checked on {data}; timed greedy at batch 1, {generation['threads']} threads, "
        "interleaved with the original.",
        f"Gates: fp32 greedy identical ≥ {_num(fp32.get('min_greedy_identical'), '.0%')}, top "
        f"beam identical ≥ {_num(fp32.get('min_beam_identical'), '.0%')}"
        + (f"; quantized variants: task metric drop ≤ {quantized.get('max_metric_drop')} "
           f"(greedy identical ≥ {_num(quantized.get('min_greedy_identical'), '.0%')} without "
           "labels)." if quantized else "."),
    ]
    lines += [f"{g['name']}: {g['reason']}" for g in generation["variants"]]
    return lines


def _real(report: Mapping[str, Any]) -> str:
    """`` (N real tokens)`` when the timed input has an attention mask."""
    real = report.get("latency_real_tokens")
    return f" ({real} real tokens)" if real is not None else ""
