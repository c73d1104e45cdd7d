"""The fleet's rows and its reports under the root: fleet.json, fleet.md and fleet.html.

One row per model: status, recommended variant, speed-up, parity summary, task metric,
wall time, the node it ran on and the CPUs it reserved. ``fleet.md`` is short enough for a
CI job summary; ``fleet.html`` is the same table for a browser.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("ok", "skipped", "gate-failed", "failed")
"""ok: converted, every gate passed; skipped: its bundle was already up to date and
verified; gate-failed: bundle written and marked failed; failed: no bundle (the reason
says why)."""
REPORT_NAMES = ("fleet.json", "fleet.md", "fleet.html")


@dataclass(frozen=True, kw_only=True)
class FleetRow:
    """One model's outcome in the fleet."""

    name: str
    checkpoint: str
    status: str
    reason: str = ""
    bundle: str | None = None
    recommended: str | None = None
    speedup: float | None = None
    min_cosine: float | None = None
    max_abs_diff: float | None = None
    task_metric: float | None = None
    metric: str | None = None
    wall_s: float = 0.0
    node: str | None = None
    node_ip: str | None = None
    reserved_cpus: float | None = None
    threads: int | None = None
    timing_wait_s: float = 0.0
    timing_windows: tuple[tuple[float, float], ...] = ()  # wall-clock spans holding the slot
    attempts: int = 1
    source_sha256: str | None = None
    onnxruntime: str | None = None
    options_digest: str | None = None
    large_eval: Mapping[str, Any] | None = None  # Ray Data figures on the full eval set

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """Whether the model passed (converted now or already up to date)."""
        return self.status in ("ok", "skipped")

    def to_json(self) -> dict[str, Any]:
        """Return the fleet.json form."""
        data = dataclasses.asdict(self)
        data["large_eval"] = dict(self.large_eval) if self.large_eval else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FleetRow:
        """Rebuild from the fleet.json form (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        fields["timing_windows"] = tuple(tuple(w) for w in fields.get("timing_windows", ()))
        return cls(**fields)


@dataclass(frozen=True, kw_only=True)
class FleetReport:
    """Every row and the run's own figures."""

    rows: tuple[FleetRow, ...]
    wall_s: float
    ray: Mapping[str, Any] = field(default_factory=dict)  # address, nodes, CPUs
    fleet_file: str = ""
    mode: str = "convert"  # or "verify"

    @property
    def ok(self) -> bool:
        """Whether every model passed."""
        return all(r.ok for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """Return the fleet.json object."""
        return {
            "mode": self.mode,
            "fleet_file": self.fleet_file,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "status": "pass" if self.ok else "fail",
            "wall_s": round(self.wall_s, 2),
            "ray": dict(self.ray),
            "rows": [r.to_json() for r in self.rows],
        }


def read_rows(root: Path) -> dict[str, FleetRow]:
    """The rows of a previous run's fleet.json under ``root``, by model name (none: {})."""
    path = Path(root) / "fleet.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {r["name"]: FleetRow.from_json(r) for r in data.get("rows", ())}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no usable previous run: nothing is skipped


def _number(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _cells(row: FleetRow) -> list[str]:
    metric = "-" if row.task_metric is None else f"{row.metric or ''} {row.task_metric:.4f}"
    if row.large_eval and "variant_metric" in row.large_eval:
        metric += f" (full set {row.large_eval['variant_metric']:.4f})"
    parity = "-"
    if row.min_cosine is not None or row.max_abs_diff is not None:
        parity = (
            f"cos {_number(row.min_cosine, '.6f')}, abs {_number(row.max_abs_diff, '.1e')}"
        )
    reservation = (
        "-" if row.reserved_cpus is None else f"{row.reserved_cpus:g} CPU / {row.threads} thr"
    )
    return [
        row.name,
        row.status + (f" ({row.attempts} tries)" if row.attempts > 1 else ""),
        row.recommended or "-",
        _number(row.speedup, ".2f", "x"),
        parity,
        metric,
        f"{row.wall_s:.1f}s",
        row.node_ip or (row.node or "-")[:12],
        reservation,
        row.reason.replace("|", "\\|"),
    ]


HEADER = [
    "model", "status", "recommended", "speed-up", "parity (min cosine, max abs diff)",
    "task metric", "wall", "node", "reservation", "reason",
]


def markdown(report: FleetReport) -> str:
    """A Markdown summary that fits a CI job summary."""
    failed = sum(not r.ok for r in report.rows)
    title = "Fleet verification" if report.mode == "verify" else "Fleet conversion"
    lines = [
        f"## {title}: {len(report.rows) - failed}/{len(report.rows)} passed "
        f"in {report.wall_s:.1f}s",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in report.rows]
    if report.ray:
        lines += ["", f"Ray: {json.dumps(dict(report.ray), sort_keys=True)}"]
    return "\n".join(lines) + "\n"


def render_html(report: FleetReport) -> str:
    """The same table as a standalone HTML page."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join(
        f'<tr class="{html.escape(r.status)}">'
        + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r))
        + "</tr>"
        for r in report.rows
    )
    title = html.escape(markdown(report).splitlines()[0].lstrip("# "))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fleet</title><style>"
        "body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".failed,.gate-failed{background:#fdd}.skipped{background:#eef}</style></head><body>"
        f"<h2>{title}</h2><table><tr>{head}</tr>{body}</table>"
        f"<pre>{html.escape(json.dumps(dict(report.ray), indent=1))}</pre></body></html>\n"
    )


def write_reports(root: Path, report: FleetReport, stem: str = "fleet") -> tuple[Path, ...]:
    """Write STEM.json, STEM.md and STEM.html under ``root``; return their paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    texts = (
        json.dumps(report.to_json(), indent=2, allow_nan=True) + "\n",
        markdown(report),
        render_html(report),
    )
    paths = tuple(root / f"{stem}{Path(name).suffix}" for name in REPORT_NAMES)
    for path, text in zip(paths, texts, strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


def progress_line(index: int, total: int, row: FleetRow) -> str:
    """One console line for a finished model."""
    cells = _cells(row)
    where = f"on {cells[7]} ({cells[8]})" if row.node or row.node_ip else ""
    verdict = f"recommended {cells[2]}, speed-up {cells[3]}" if row.recommended else row.reason
    return f"[{index}/{total}] {row.name}: {cells[1]} in {cells[6]} {where}: {verdict}".strip()


def rows_in_order(rows: Mapping[str, FleetRow], names: Sequence[str]) -> tuple[FleetRow, ...]:
    """The rows in the fleet file's order."""
    return tuple(rows[n] for n in names if n in rows)
