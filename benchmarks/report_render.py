"""Render a report object as Markdown (a CI job summary) and as one self-contained HTML page.

Both show the same tables, built once here as rows of text: the variants (recommended first,
the original as the reference row), the gates, the latency sweep and the footprint. The
HTML page adds the plots, embedded as base64 PNG data URIs, and inline CSS: it opens from
an e-mail attachment or a CI artifact with nothing else beside it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

Row = list[str]
_PASS, _FAIL = "✅ pass", "❌ fail"
_CAPTIONS = {
    "latency_vs_seq": "Latency against sequence length (batch 1): lower is better.",
    "throughput_vs_batch": "Throughput against batch size: higher is better.",
    "parity": "Parity of every output at every check shape: lower is closer to the original.",
}


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
    return _PASS if status == "pass" else _FAIL


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
        f"input {_shape(report.get('latency_input'))}; "
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
            _num(g["tokens_per_s_speedup"], ".2f") + ("×" if g["tokens_per_s_speedup"] else ""),
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
    budget = generation["budget"]
    lines = [
        f"Graphs: {split['kind']}, {', '.join(split['files'].values())}"
        + (" (one merged decoder for the first and the cached steps)" if split["merged"] else "")
        + f". Checked on {data}; timed greedy at batch 1, {generation['threads']} threads, "
        "interleaved with the original.",
        f"Gates: fp32 greedy identical ≥ {budget['fp32_greedy_identical']:.0%}, top beam "
        f"identical ≥ {budget['fp32_beam_identical']:.0%}; quantized variants: task metric drop "
        f"≤ {budget['max_metric_drop']} (identical ≥ {budget['min_identical_unlabelled']:.0%} "
        "without labels).",
    ]
    lines += [f"{g['name']}: {g['reason']}" for g in generation["variants"]]
    return lines


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Row, rows: Sequence[Row]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown that fits a CI job summary."""
    model = report["model"]
    task = f" ({model['task']})" if model.get("task") else ""
    lines = [f"## convert-model report: {model['name']}{task}", ""]
    for sentence in headline(report):
        lines += [sentence, ""]
    lines += _md_table(*variant_rows(report))
    lines += ["", "### Gates", ""]
    lines += _md_table(*gate_rows(report))
    generation = generation_rows(report)
    if generation is not None:
        lines += ["", f"### {GENERATION_TITLE}", ""]
        lines += _md_table(*generation)
        lines += [""] + [f"- {line}" for line in generation_lines(report)]
    for title, table in (
        ("Latency sweep: p50 ms (speed-up over the original)", sweep_rows(report)),
        ("Footprint: each graph in a fresh process", footprint_rows(report)),
    ):
        if table is not None:
            lines += ["", f"<details><summary>{title}</summary>", ""]
            lines += _md_table(*table)
            lines += ["", "</details>"]
    lines += [
        "",
        f"<sub>convert-model {report['convert_model_version']} · {report['created']} · "
        f"export: {model.get('export_strategy')}, opset {model.get('opset')} · "
        "report.html has the plots</sub>",
        "",
    ]
    return "\n".join(lines)


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.recommended{background:#eef7ee;font-weight:600}tr.reference{color:#555;font-style:italic}
.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:600}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;font-weight:600}
.badge.pass{background:#1a7f37;color:#fff}.badge.fail{background:#cf222e;color:#fff}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.muted{color:#666;font-size:.9em}
"""
_NUMERIC = {"min cosine", "max abs diff", "top-1", "p50 ms", "speed-up", "size",
            "greedy identical", "token agreement", "exact match", "chrF", "TTFT p50 ms",
            "tokens/s", "tokens/s speed-up"}


def _html_table(header: Row, rows: Sequence[Row], row_classes: Sequence[str] = ()) -> str:
    numeric = [h in _NUMERIC for h in header]
    out = ["<table><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        css = row_classes[i] if i < len(row_classes) else ""
        out.append(f'<tr class="{css}">' if css else "<tr>")
        for cell, is_num in zip(row, numeric, strict=True):
            klass = ' class="num"' if is_num else ""
            if cell in (_PASS, _FAIL):
                klass = f' class="{"pass" if cell == _PASS else "fail"}"'
            out.append(f"<td{klass}>{html.escape(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _inline(markdown: str) -> str:
    """Escape a headline sentence and turn its **bold** spans into <strong>."""
    parts = html.escape(markdown).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def render_html(report: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """The report as one HTML page with inline CSS and the plots as data URIs."""
    model = report["model"]
    status = report["status"]
    title = f"convert-model report: {model['name']}"
    header, rows = variant_rows(report)
    classes = ["recommended" if v["recommended"] else "" for v in report["variants"]]
    facts = " · ".join(
        html.escape(str(fact))
        for fact in (
            model.get("task") or "no task",
            model.get("model_type"),
            f"exported with {model.get('export_strategy')}, opset {model.get('opset')}",
            f"source {model.get('source')}",
        )
    )
    body = [
        f'<h1>{html.escape(title)} <span class="badge {status}">{status.upper()}</span></h1>',
        f'<p class="muted">{facts}</p>',
    ]
    body += [f"<p>{_inline(s)}</p>" for s in headline(report)]
    body += ["<h2>Variants</h2>", _html_table(header, rows, [*classes, "reference"])]
    body.append(
        '<p class="muted">min cosine, max abs diff and top-1 are the worst over every output '
        "and check shape (and the eval set, when given). ★ marks the variant the bundle "
        "recommends; “not kept” variants were measured but their files are not in the "
        "bundle.</p>"
    )
    body += ["<h2>Gates</h2>", _html_table(*gate_rows(report))]
    generation = generation_rows(report)
    if generation is not None:
        body += [f"<h2>{html.escape(GENERATION_TITLE)}</h2>", _html_table(*generation), "<ul>"]
        body += [f"<li>{html.escape(line)}</li>" for line in generation_lines(report)]
        body.append("</ul>")
    if images:
        body.append("<h2>Plots</h2>")
        for key, png in images.items():
            data = base64.b64encode(png).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(key)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(_CAPTIONS.get(key, key))}</figcaption></figure>"
            )
    for title_text, table in (
        ("Latency sweep: p50 ms (speed-up over the original)", sweep_rows(report)),
        ("Footprint: each graph in a fresh process", footprint_rows(report)),
    ):
        if table is not None:
            body += [f"<h2>{html.escape(title_text)}</h2>", _html_table(*table)]
    body.append("<h2>Why each variant was or was not recommended</h2><ul>")
    for v in report["variants"]:
        reason = v["reason"] or "–"
        body.append(f"<li><strong>{html.escape(v['name'])}</strong>: {html.escape(reason)}")
        if v["failures"]:
            body.append("<ul>")
            body += [f"<li>{html.escape(line)}</li>" for line in v["failures"]]
            body.append("</ul>")
        body.append("</li>")
    body.append("</ul>")
    body.append(
        f'<p class="muted">convert-model {html.escape(str(report["convert_model_version"]))} · '
        f"{html.escape(str(report['created']))} · report schema "
        f"{report['report_schema_version']}</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
