"""The conversion report: one versioned JSON object built from the manifest and the sweep.

``build_report`` gathers what a reader needs (per variant: parity summary, latency,
speed-up and its spread, size, cold start, memory; the gates; the sweep) into the
``report.json`` form documented in ``benchmarks/REPORT_SCHEMA.md``; ``write_reports`` writes
it with its Markdown and HTML renderings and the plots; ``read_report`` reads one back and
checks its schema version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convert_model.core.errors import BundleError
from convert_model.core.names import BASELINE

if TYPE_CHECKING:
    from benchmarks.sweep import SweepResult
    from convert_model.bundle.manifest import Manifest, VariantRecord

REPORT_SCHEMA_VERSION = 2
READABLE_VERSIONS = {1, 2}  # 2 changed only the generation section, which 1 reads as absent
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS = {
    "latency_vs_seq": "plots/latency_vs_seq.png",
    "throughput_vs_batch": "plots/throughput_vs_batch.png",
    "parity": "plots/parity.png",
}
ORIGINAL = "original"
# The median's standard error is 1.2533 sigma / sqrt(n) for normal data; sigma comes from
# the interquartile range (1.349 sigma), so the stalled calls of a busy machine, which sit in
# the tail, do not inflate it. Records without quartiles fall back to p90 - p50 (1.2816 sigma).
_IQR_SIGMAS = 1.349
_P90_SIGMAS = 1.2816
_MEDIAN_SE = 1.2533
_GENERIC_NAMES = ("model", "checkpoint", "final", "best", "output", "outputs", "weights")


class ReportError(BundleError):
    """A report file is missing, not JSON, or not of a schema version this tool reads."""

    stage = "report"


def median_error(latency: Mapping[str, Any] | None) -> float:
    """The relative standard error of a latency record's p50, from its interquartile range."""
    if not latency or not latency.get("p50_ms") or not latency.get("runs"):
        return 0.0
    if latency.get("p75_ms") is not None and latency.get("p25_ms") is not None:
        sigma = max(float(latency["p75_ms"]) - float(latency["p25_ms"]), 0.0) / _IQR_SIGMAS
    else:
        sigma = max(float(latency["p90_ms"]) - float(latency["p50_ms"]), 0.0) / _P90_SIGMAS
    return _MEDIAN_SE * sigma / math.sqrt(int(latency["runs"])) / float(latency["p50_ms"])


def speedup_spread(
    variant: Mapping[str, Any] | None, original: Mapping[str, Any] | None
) -> float | None:
    """Relative standard error of a speed-up.

    From the paired ratio's interval when there is one (half-width on the log scale over
    the normal quantile of its confidence), else both p50s' errors combined.
    """
    if not variant or not original:
        return None
    paired = variant.get("ratio_to_reference")
    if paired and paired.get("low") and paired.get("high"):
        z = _normal_quantile(0.5 + float(paired.get("confidence", 0.95)) / 2)
        half = (math.log(float(paired["high"])) - math.log(float(paired["low"]))) / 2
        return round(half / z, 4)
    return round(math.hypot(median_error(variant), median_error(original)), 4)


def _normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on ``erf`` (no scipy)."""
    low, high = -10.0, 10.0
    for _ in range(80):
        mid = (low + high) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _worst(values: Sequence[float | None], lowest: bool) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return min(present) if lowest else max(present)


def parity_summary(record: VariantRecord) -> dict[str, Any] | None:
    """The worst figures over every output and check shape, and per output."""
    if not record.parity:
        return None
    outputs: dict[str, list[Any]] = {}
    for p in record.parity:
        outputs.setdefault(p.name, []).append(p)
    per_output: list[dict[str, Any]] = [
        {
            "name": name,
            "checks": len(items),
            "shape_match": all(p.shape_match for p in items),
            "min_cosine": _worst([p.min_cosine for p in items], lowest=True),
            "max_abs_diff": _worst([p.max_abs_diff for p in items], lowest=False),
            "max_rel_diff": _worst([p.max_rel_diff for p in items], lowest=False),
            "top1_agreement": _worst([p.top1_agreement for p in items], lowest=True),
        }
        for name, items in outputs.items()
    ]
    return {
        "min_cosine": _worst([o["min_cosine"] for o in per_output], lowest=True),
        "max_abs_diff": _worst([o["max_abs_diff"] for o in per_output], lowest=False),
        "max_rel_diff": _worst([o["max_rel_diff"] for o in per_output], lowest=False),
        "top1_agreement": _worst([o["top1_agreement"] for o in per_output], lowest=True),
        "records": len(record.parity),
        "outputs": per_output,
        "points": [
            {
                "output": p.name,
                "check": p.check,
                "min_cosine": p.min_cosine,
                "max_abs_diff": p.max_abs_diff,
            }
            for p in record.parity
        ],
    }


def _variant(
    record: VariantRecord,
    manifest: Manifest,
    sweep: SweepResult | None,
) -> dict[str, Any]:
    original = manifest.measurement.get(ORIGINAL) or {}
    base_metric = original.get("task_metric")
    footprint = sweep.footprints.get(record.name) if sweep is not None else None
    footprint_error = sweep.footprint_errors.get(record.name) if sweep is not None else None
    return {
        "name": record.name,
        "file": record.file or None,
        "kept": bool(record.file),
        "precision": record.precision,
        "device": record.device,
        "status": "pass" if record.passed else "fail",
        "recommended": record.name == manifest.recommended,
        "reason": record.reason,
        "failures": list(record.failures),
        "budget": record.budget.to_json(),
        "parity": parity_summary(record),
        "task_metric": record.task_metric,
        "task_metric_delta": None
        if record.task_metric is None or base_metric is None
        else round(record.task_metric - base_metric, 6),
        "latency": dict(record.latency) if record.latency else None,
        "speedup": record.speedup,
        "speedup_spread": speedup_spread(record.latency, original.get("latency")),
        "size_bytes": record.size_bytes,
        "footprint": footprint.to_json() if footprint is not None else None,
        "footprint_error": footprint_error,
    }


def _budget_text(budget: Mapping[str, Any]) -> str:
    parts = []
    if budget.get("max_abs_diff") is not None:
        parts.append(f"max abs diff ≤ {budget['max_abs_diff']:g}")
    if budget.get("min_cosine") is not None:
        parts.append(f"min cosine ≥ {budget['min_cosine']:g}")
    if budget.get("min_top1_agreement") is not None:
        parts.append(f"top-1 ≥ {budget['min_top1_agreement']:.0%}")
    if budget.get("max_metric_drop") is not None:
        parts.append(f"task metric drop ≤ {budget['max_metric_drop']:g}")
    return ", ".join(parts) or "no limits"


def _gates(variants: Sequence[Mapping[str, Any]], recommended: str | None) -> list[dict[str, Any]]:
    """Each gate a conversion must pass, with its verdict and the figures behind it."""
    gates = []
    fp32 = next((v for v in variants if v["name"] == BASELINE), None)
    if fp32 is not None:
        gates.append(
            {
                "name": "fp32 parity with the original",
                "status": fp32["status"],
                "limit": _budget_text(fp32["budget"]),
                "detail": "; ".join(fp32["failures"]) or "every output within budget",
            }
        )
    for v in variants:
        if v["name"] == BASELINE:
            continue
        gates.append(
            {
                "name": f"{v['name']} accuracy budget",
                "status": v["status"],
                "limit": _budget_text(v["budget"]),
                "detail": (v["failures"][0] if v["failures"] else "within budget"),
            }
        )
    gates.append(
        {
            "name": "a variant recommended",
            "status": "pass" if recommended else "fail",
            "limit": "fastest variant within its budget, never slower than fp32",
            "detail": recommended or "no variant qualified",
        }
    )
    return gates


def build_report(manifest: Manifest, sweep: SweepResult | None = None) -> dict[str, Any]:
    """The ``report.json`` object (schema in ``benchmarks/REPORT_SCHEMA.md``).

    Variants are listed with the recommended one first, then in the manifest's order.
    """
    records = sorted(manifest.variants, key=lambda r: r.name != manifest.recommended)
    variants = [_variant(r, manifest, sweep) for r in records]
    measurement = dict(manifest.measurement)
    original = measurement.get(ORIGINAL) or {}
    source = dict(manifest.source)
    return {
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "convert_model_version": manifest.convert_model_version,
        "created": manifest.created,
        "status": "pass" if manifest.passed else "fail",
        "model": {
            "name": _model_name(source.get("path", "")),
            "source": source.get("path"),
            "form": source.get("form"),
            "source_sha256": source.get("sha256"),
            "task": manifest.task,
            "model_type": manifest.model_type,
            "export_strategy": manifest.export.get("strategy"),
            "opset": manifest.export.get("opset"),
            "padding": manifest.export.get("padding"),
            "inputs": [dict(i) for i in manifest.inputs],
            "outputs": [dict(o) for o in manifest.outputs],
        },
        "reference": manifest.reference,
        "recommended": manifest.recommended,
        "machine": {
            "threads": measurement.get("threads"),
            "cpu": measurement.get("cpu"),
            "onnxruntime": manifest.toolchain.get("onnxruntime"),
            "torch": manifest.toolchain.get("torch"),
            "omp_wait_policy": measurement.get("omp_wait_policy"),
        },
        "latency_input": measurement.get("latency_input"),
        "latency_real_tokens": measurement.get("latency_real_tokens"),
        "latency_config": measurement.get("latency_config"),
        "original": {
            "latency": original.get("latency"),
            "task_metric": original.get("task_metric"),
        },
        "eval": measurement.get("eval"),
        "calibration": measurement.get("calibration"),
        "gates": _gates(variants, manifest.recommended),
        "variants": variants,
        "sweep": sweep.to_json() if sweep is not None else None,
        "generation": manifest.generation.to_json() if manifest.generation is not None else None,
        "plots": {},
    }


def _model_name(path: str) -> str:
    """A short name for titles: the checkpoint's folder or file name, skipping generic ones."""
    parts = [p for p in Path(path).parts if p not in ("/", "")]
    while len(parts) > 1 and (
        parts[-1].startswith("checkpoint-") or parts[-1].split(".")[0] in _GENERIC_NAMES
    ):
        parts.pop()
    name = parts[-1] if parts else "model"
    return name.split(".")[0] or name


def write_reports(
    folder: Path, manifest: Manifest, sweep: SweepResult | None = None
) -> dict[str, Any]:
    """Write report.json, report.md, report.html and plots/*.png into ``folder``.

    Returns the report object, with ``plots`` naming the PNG files that were written (a plot
    without data, such as latency over sequence length for an image model, is left out).
    """
    from benchmarks import plots
    from benchmarks.report_render import render_html, render_markdown

    folder = Path(folder)
    report = build_report(manifest, sweep)
    images = plots.render_all(report)
    written: dict[str, str] = {}
    for key, png in images.items():
        path = folder / PLOTS[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written[key] = PLOTS[key]
    report["plots"] = written
    (folder / REPORT_JSON).write_text(
        json.dumps(report, indent=2, allow_nan=True) + "\n", encoding="utf-8"
    )
    (folder / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
    (folder / REPORT_HTML).write_text(render_html(report, images), encoding="utf-8")
    return report


def check_report(data: Any, where: str = "report") -> dict[str, Any]:
    """Return ``data`` when it is a report of this schema version; raise ReportError if not."""
    if not isinstance(data, dict):
        raise ReportError(f"{where}: not a JSON object")
    version = data.get("report_schema_version")
    if version not in READABLE_VERSIONS or (version == 1 and data.get("generation")):
        raise ReportError(
            f"{where}: report_schema_version {version!r} is not supported "
            f"(expected {REPORT_SCHEMA_VERSION})"
        )
    missing = [k for k in ("status", "variants", "original", "machine") if k not in data]
    if missing or not isinstance(data["variants"], list):
        raise ReportError(f"{where}: malformed report; missing {missing or ['variants list']}")
    for v in data["variants"]:
        if not isinstance(v, dict) or "name" not in v:
            raise ReportError(f"{where}: malformed report; a variant has no name")
    bad = nonfinite_figures(data)
    if bad:
        raise ReportError(f"{where}: bad report; NaN/Inf figures: {', '.join(bad[:5])}"
                          + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
    return data


def nonfinite_figures(data: Mapping[str, Any]) -> list[str]:
    """The figures ``compare`` reads that are NaN or Inf, as ``variant.field`` paths."""
    found = []

    def check(path: str, value: Any) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            found.append(path)

    original = data.get("original") or {}
    check("original.task_metric", original.get("task_metric"))
    check("original.latency.p50_ms", (original.get("latency") or {}).get("p50_ms"))
    for v in data["variants"]:
        name = v["name"]
        for key in ("speedup", "speedup_spread", "task_metric"):
            check(f"{name}.{key}", v.get(key))
        check(f"{name}.parity.min_cosine", (v.get("parity") or {}).get("min_cosine"))
        check(f"{name}.latency.p50_ms", (v.get("latency") or {}).get("p50_ms"))
    return found


def read_report(path: Path) -> dict[str, Any]:
    """Read a ``report.json`` (or a bundle folder holding one) and check its schema version."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ReportError(f"{path}: cannot read ({e.strerror or e})") from e
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from e
    return check_report(data, str(path))
