"""Render a report object as Markdown (a CI job summary) and as one self-contained HTML page.

Both show the same tables (``benchmarks.report_tables``). The HTML page adds the plots,
embedded as base64 PNG data URIs, and inline CSS: it opens from an e-mail attachment or a
CI artifact with nothing else beside it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.report_tables import (
    FAIL,
    GENERATION_TITLE,
    PASS,
    Row,
    footprint_rows,
    gate_rows,
    generation_lines,
    generation_rows,
    headline,
    sweep_rows,
    variant_rows,
)

_CAPTIONS = {
    "latency_vs_seq": "Latency against sequence length (batch 1): lower is better.",
    "throughput_vs_batch": "Throughput against batch size: higher is better.",
    "parity": "Parity of every output at every check shape: lower is closer to the original.",
}


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
            if cell in (PASS, FAIL):
                klass = f' class="{"pass" if cell == PASS else "fail"}"'
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
