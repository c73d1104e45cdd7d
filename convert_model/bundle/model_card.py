"""The bundle's ``MODEL_CARD.md``: what a serving team needs on one page.

Rendered from the report object (``benchmarks/report.py``), so every figure on the card is
one the report holds: where the model came from, which file to serve and how, what parity
and speed were measured, and the limits of those measurements.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODEL_CARD = "MODEL_CARD.md"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _padding(record: Mapping[str, Any] | None) -> list[str]:
    """The card's line on the padding cut (none for a bundle written before it)."""
    if not record:
        return []
    if not record.get("trimmed"):
        return [f"- padding: kept as exported ({record.get('reason')})"]
    back = record.get("padded_outputs") or []
    return [f"- padding: the graph cuts {', '.join(record.get('inputs') or [])} after the last "
            "column with a real token (measured: outputs unchanged)"
            + (f"; {', '.join(back)} padded back with zeros" if back else "")]


def render_model_card(report: Mapping[str, Any]) -> str:
    """The card as Markdown."""
    from benchmarks.report_tables import headline

    model = report["model"]
    recommended = next((v for v in report["variants"] if v["recommended"]), None)
    lines = [
        f"# {model['name']} — ONNX bundle",
        "",
        *[line for sentence in headline(report)[:1] for line in (sentence, "")],
        "## Source",
        "",
        f"- checkpoint: `{model.get('source')}` ({model.get('form')}), "
        f"sha256 `{model.get('source_sha256')}`",
        f"- task: {model.get('task') or '–'}; model type: {model.get('model_type') or '–'}",
        f"- exported with {model.get('export_strategy')}, opset {model.get('opset')}",
        *_padding(model.get("padding")),
        f"- inputs: {_signature(model.get('inputs') or [])}",
        f"- outputs: {_signature(model.get('outputs') or [])}",
        "",
        "## Serve it",
        "",
    ]
    if recommended is not None and recommended.get("file"):
        lines += [
            "```python",
            "import onnxruntime as ort",
            "",
            f'session = ort.InferenceSession("{recommended["file"]}", '
            'providers=["CPUExecutionProvider"])',
            "outputs = session.run(None, inputs)  # inputs: a dict of numpy arrays by name",
            "```",
            "",
            f"`{recommended['file']}` is the recommended variant ({recommended['name']}, "
            f"{recommended['precision']}); `model.onnx` is the fp32 export.",
            "",
        ]
    else:
        lines += ["No variant passed its gates; see report.md for every failure.", ""]
    generation = report.get("generation")
    if generation:
        lines += _generation_section(generation)
    lines += ["## Measured parity and speed", ""]
    for v in report["variants"]:
        if not v.get("kept"):
            continue
        parity = v.get("parity") or {}
        metric = v.get("task_metric")
        lines.append(
            f"- **{v['name']}** ({v['status']}): "
            f"min cosine {_fmt(parity.get('min_cosine'), '.6f')}, "
            f"max abs diff {_fmt(parity.get('max_abs_diff'), '.2e')}"
            + (f", task metric {metric:.4f}" if metric is not None else "")
            + (f", {v['speedup']:.2f}× the original" if v.get("speedup") else "")
        )
    machine = report["machine"]
    cpu = machine.get("cpu") or {}
    lines += [
        "",
        "## Limits",
        "",
        f"- Speed was measured on {cpu.get('processor', 'an unknown CPU')} with "
        f"{machine.get('threads')} threads; the speed-ups are ratios to the original in the "
        "same run, absolute times depend on the machine.",
        "- Parity was measured on the bundle's sample inputs"
        + (" and the eval set" if report.get("eval") else "")
        + "; data unlike them may behave differently. `convert-model verify BUNDLE --data "
        "FILE.npz` checks every kept variant against fp32 on your rows.",
        *([f"- Calibration: {calibration['warning']}."]
          if (calibration := report.get("calibration") or {}).get("warning") else []),
        "- Every file's sha256 is in manifest.json; `convert-model verify BUNDLE` re-checks "
        "them and re-runs parity.",
        "",
    ]
    return "\n".join(lines)


def _signature(tensors: list[Mapping[str, Any]]) -> str:
    parts = [
        f"`{t['name']}` {t['dtype']}[{', '.join(str(d) for d in t['shape'])}]" for t in tensors
    ]
    return ", ".join(parts) or "–"


def _generation_section(generation: Mapping[str, Any]) -> list[str]:
    name = generation.get("recommended")
    chosen = next((v for v in generation["variants"] if v["name"] == name), None)
    lines = ["## Generate with it (no torch needed)", ""]
    if chosen is None:
        return lines + ["No generation variant passed its gates; see report.md.", ""]
    folder = f"generation/{chosen['name']}"
    latency = chosen.get("latency") or {}
    speedup = chosen.get("speedup")
    lines += [
        "```python",
        "import sys",
        'sys.path.insert(0, "BUNDLE")  # this folder',
        "from runtime import Generator",
        "",
        f'generator = Generator("BUNDLE/{folder}", config_folder="BUNDLE/generation")',
        "sequences = generator.generate(input_ids, attention_mask, num_beams=1)",
        "```",
        "",
        f"Recommended generation graphs: `{folder}/` ({chosen['precision']}). Greedy outputs "
        f"identical to `model.generate`: {_fmt(chosen.get('greedy_identical'), '.1%')}; top "
        f"beam ({generation['num_beams']} beams): {_fmt(chosen.get('beam_identical'), '.1%')}; "
        f"{_fmt(latency.get('tokens_per_s'), '.1f')} tokens/s"
        + (f" ({speedup:.2f}× `model.generate`)" if speedup else "")
        + f", time to first token {_fmt(latency.get('ttft_p50_ms'), '.2f')} ms (p50, batch 1).",
        "",
    ]
    return lines


def write_model_card(folder: Path, report: Mapping[str, Any]) -> Path:
    """Write ``MODEL_CARD.md`` into ``folder``."""
    path = Path(folder) / MODEL_CARD
    path.write_text(render_model_card(report), encoding="utf-8")
    return path
