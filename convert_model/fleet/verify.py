"""``convert-model fleet --verify ROOT``: re-check every bundle under ROOT with this toolchain.

What a team runs after an onnxruntime upgrade. Each bundle (a folder holding
``manifest.json``) goes through ``convert_model.bundle.verify``: every file's SHA-256,
every kept graph re-run on the stored inputs against the stored reference outputs within
its budget, generation graphs re-run token for token. With ``retime`` the kept graphs are
timed again, interleaved, on the stored sample input at the bundle's thread count, and the
recommended variant's speed over fp32 is compared with the one in the manifest; a
recommended variant now more than ``SLOWER_BY`` slower than fp32 fails, as it would never
have been chosen. Bundles are checked one after another in this process, so a retime never
shares the machine with another bundle's work.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convert_model.core.errors import BundleError, ConvertModelError, first_line
from convert_model.fleet.report import FleetReport, FleetRow, write_reports
from convert_model.fleet.task import WORK_DIR, row_from_manifest

SLOWER_BY = 0.10
VERIFY_STEM = "fleet-verify"


def bundles_under(root: Path) -> list[Path]:
    """Every bundle folder under ``root`` (hidden folders, staging ones included, skipped)."""
    from convert_model.bundle.manifest import MANIFEST_NAME

    found = []
    for manifest in sorted(Path(root).rglob(MANIFEST_NAME)):
        rel = manifest.parent.relative_to(root).parts
        if not any(part.startswith(".") or part == WORK_DIR for part in rel):
            found.append(manifest.parent)
    return [b for b in found if not any(b != o and o in b.parents for o in found)]


def retime(bundle: Path, manifest: Any) -> tuple[dict[str, float], list[str]]:
    """p50 ms of fp32 and the recommended variant now; problems when it lost its lead."""
    from benchmarks.latency import LatencyConfig, measure_interleaved
    from convert_model.bundle.verify import load_sets
    from converters import onnx_graph

    threads = int(manifest.measurement.get("threads") or 1)
    feed = load_sets(bundle / manifest.sample_inputs)[0]
    names = ["fp32"] + ([manifest.recommended] if manifest.recommended not in (None, "fp32")
                        else [])
    sessions = {n: onnx_graph.session(bundle / manifest.variant(n).file, threads) for n in names}
    runners = {n: (lambda s=s: onnx_graph.run(s, feed)) for n, s in sessions.items()}
    stats = measure_interleaved(runners, LatencyConfig(warmup=3, rounds=20, max_seconds=30.0))
    now = {n: s.p50_ms for n, s in stats.items()}
    problems: list[str] = []
    if len(names) == 2:
        ratio = now["fp32"] / now[names[1]] if now[names[1]] > 0 else float("inf")
        if ratio < 1.0 - SLOWER_BY:
            then = [manifest.variant(n).latency or {} for n in names]
            was = (then[0].get("p50_ms") or 0) / (then[1].get("p50_ms") or 1)
            problems.append(
                f"retime: {names[1]} is now {1 / ratio:.2f}x slower than fp32 "
                f"(was {was:.2f}x faster); convert again to choose anew"
            )
    return now, problems


def verify_root(root: Path, *, retime_latency: bool = False,
                log: Callable[[str], None] = print) -> FleetReport:
    """Verify every bundle under ``root``; write fleet-verify.{json,md,html} there."""
    from convert_model.bundle.verify import verify

    root = Path(root)
    start = time.perf_counter()
    bundles = bundles_under(root)
    if not bundles:
        from convert_model.core.errors import UsageError

        raise UsageError(f"{root}: no bundles (folders with manifest.json) under it")
    rows = []
    for index, bundle in enumerate(bundles, start=1):
        began = time.perf_counter()
        fields: dict[str, Any] = {"name": str(bundle.relative_to(root)), "bundle": str(bundle),
                                  "node": platform.node()}
        try:
            result = verify(bundle)
            problems = list(result.problems)
            if retime_latency and not problems:
                now, slower = retime(bundle, result.manifest)
                problems += slower
                fields["reason"] = "retimed p50 ms: " + ", ".join(
                    f"{n} {ms:.3f}" for n, ms in now.items()
                )
            status = "failed" if problems else "ok"
            if problems:
                more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
                fields["reason"] = problems[0] + more
            if result.manifest is None:  # manifest.json no longer parses
                raise BundleError(f"{bundle}: {problems[0] if problems else 'corrupt'}")
            row = row_from_manifest(
                result.manifest, checkpoint=str(result.manifest.source.get("path", "")),
                status=status, wall_s=time.perf_counter() - began, **fields,
            )
        except (ConvertModelError, OSError, ValueError) as e:
            row = FleetRow(checkpoint="", status="failed", wall_s=time.perf_counter() - began,
                           reason=" ".join(first_line(e).split()), **fields)
        rows.append(row)
        log(f"[{index}/{len(bundles)}] {row.name}: {row.status} {row.reason}".rstrip())
    report = FleetReport(rows=tuple(rows), wall_s=time.perf_counter() - start, mode="verify",
                         ray={})
    write_reports(root, report, stem=VERIFY_STEM)
    return report
