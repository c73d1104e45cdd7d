"""The report: in the bundle, versioned and round-tripped, readable as Markdown and HTML."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchmarks.report import (
    PLOTS,
    REPORT_SCHEMA_VERSION,
    ReportError,
    build_report,
    read_report,
    speedup_spread,
    write_reports,
)
from benchmarks.sweep import SweepResult
from convert_model.bundle.manifest import read_manifest
from convert_model.bundle.verify import verify

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects what the HTML tests look at: images, table cells, links, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables = 0
        self.cells: list[str] = []
        self.external: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "table":
            self.tables += 1
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")
        for key in ("href", "src"):
            value = values.get(key) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)
        if tag in ("script", "link"):
            self.external.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def test_write_reports_puts_reports_and_plots_in_the_bundle_and_verify_holds(swept_bundle: Path):
    for name in ("report.json", "report.md", "report.html", *PLOTS.values()):
        assert (swept_bundle / name).is_file(), name
    manifest = read_manifest(swept_bundle)
    for name in ("report.json", "report.md", "report.html", *PLOTS.values()):
        assert name in manifest.files, f"{name} is not hashed in the manifest"
    assert verify(swept_bundle).ok, verify(swept_bundle).problems


def test_report_schema_round_trips(swept_bundle: Path, tmp_path: Path):
    report = read_report(swept_bundle / "report.json")
    assert report["report_schema_version"] == REPORT_SCHEMA_VERSION
    copy = tmp_path / "report.json"
    copy.write_text(json.dumps(report), encoding="utf-8")
    assert read_report(copy) == report
    assert read_report(swept_bundle) == report, "a bundle folder reads its report.json"
    sweep = SweepResult.from_json(report["sweep"])
    assert sweep.to_json() == report["sweep"]


def test_report_lists_recommended_first_with_figures(swept_bundle: Path):
    report = read_report(swept_bundle)
    variants = report["variants"]
    assert variants[0]["name"] == report["recommended"] and variants[0]["recommended"]
    assert report["machine"]["threads"] >= 1 and report["machine"]["cpu"]["processor"]
    for v in variants:
        if not v["size_bytes"]:  # not built: the int8 search's record when nothing qualified
            assert v["status"] == "fail" and v["file"] is None
            continue
        if v["device"] == "cpu":
            assert v["latency"]["p50_ms"] > 0 and v["speedup"] > 0
            assert v["speedup_spread"] is not None and v["speedup_spread"] >= 0
        assert v["parity"]["min_cosine"] is not None and v["size_bytes"] > 0
    gates = {g["name"]: g["status"] for g in report["gates"]}
    assert gates["fp32 parity with the original"] == "pass"
    assert gates["a variant recommended"] == "pass"


def test_report_sweep_covers_every_point_runner_and_footprint(swept_bundle: Path):
    report = read_report(swept_bundle)
    sweep = report["sweep"]
    points = [(p["batch_size"], p["seq_len"]) for p in sweep["points"]]
    assert points == [(1, 8), (2, 8), (1, 16), (2, 16)]
    assert sweep["seq_axis"] == "sequence_length" and sweep["batch_axis"] == "batch_size"
    cpu = {v["name"] for v in report["variants"] if v["device"] == "cpu" and v["size_bytes"]}
    for p in sweep["points"]:
        assert set(p["latency"]) == cpu | {"original"}, p
        assert p["input_shapes"]["input_ids"] == [p["batch_size"], p["seq_len"]]
    kept = {v["name"] for v in report["variants"] if v["device"] == "cpu" and v["size_bytes"]}
    assert set(sweep["footprints"]) == kept
    for v in report["variants"]:
        if v["device"] == "cpu":
            f = v["footprint"]
            assert f["cold_start_ms"] >= f["session_ms"] > 0
            assert f["peak_rss_mb"] >= f["baseline_rss_mb"] > 0


def test_report_markdown_has_one_table_recommended_first_and_gates(swept_bundle: Path):
    text = (swept_bundle / "report.md").read_text(encoding="utf-8")
    report = read_report(swept_bundle)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| variant | status | min cosine | max abs diff | top-1")
    assert rows[1].startswith(f"| {report['recommended']} ★ recommended | ✅ pass")
    assert "### Gates" in text and "| fp32 parity with the original | ✅ pass" in text
    assert f"with {report['machine']['threads']} threads" in text
    assert report["machine"]["cpu"]["processor"] in text
    assert len(text) < 64 * 1024, "must fit a CI job summary"


def test_report_html_is_self_contained_with_embedded_plots_and_table(swept_bundle: Path):
    text = (swept_bundle / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert page.external == [], "no external links, scripts or stylesheets"
    prefix = "data:image/png;base64,"
    assert len(page.images) == len(PLOTS)
    for src in page.images:
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]).startswith(PNG_MAGIC)
    assert page.tables >= 2
    report = read_report(swept_bundle)
    assert f"{report['recommended']} ★ recommended" in page.cells
    assert "fp32 parity with the original" in page.cells


def test_write_reports_without_sweep_skips_sweep_plots(swept_bundle: Path, tmp_path: Path):
    manifest = read_manifest(swept_bundle)
    report = write_reports(tmp_path, manifest, None)
    assert report["sweep"] is None and set(report["plots"]) == {"parity"}
    assert (tmp_path / PLOTS["parity"]).read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / PLOTS["latency_vs_seq"]).exists()
    page = _Page()
    page.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert len(page.images) == 1
    assert "Latency sweep" not in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_build_report_matches_written_report(swept_bundle: Path):
    manifest = read_manifest(swept_bundle)
    written = read_report(swept_bundle)
    sweep = SweepResult.from_json(written["sweep"])
    rebuilt = build_report(manifest, sweep)
    rebuilt["plots"] = written["plots"]
    assert json.loads(json.dumps(rebuilt)) == written


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a JSON object"),
        ('{"report_schema_version": 99}', "report_schema_version 99 is not supported"),
        ('{"report_schema_version": 1}', "malformed report"),
    ],
)
def test_read_report_rejects_bad_files(tmp_path: Path, content: str, message: str):
    path = tmp_path / "report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError, match=message):
        read_report(path)


def test_read_report_missing_file_is_a_report_error(tmp_path: Path):
    with pytest.raises(ReportError, match="cannot read"):
        read_report(tmp_path / "nope.json")


def test_speedup_spread_grows_with_the_timings_spread():
    tight = {"p50_ms": 1.0, "p25_ms": 0.98, "p75_ms": 1.03, "p90_ms": 1.05, "runs": 20}
    loose = {"p50_ms": 1.0, "p25_ms": 0.8, "p75_ms": 1.4, "p90_ms": 2.0, "runs": 20}
    assert (
        speedup_spread(tight, tight) < speedup_spread(loose, tight) < speedup_spread(loose, loose)
    )
    assert speedup_spread(None, tight) is None


def test_speedup_spread_ignores_a_tail_of_stalled_calls():
    """A tenth of calls stalled (p90 far out) leaves the quartiles, and so the spread, alone."""
    calm = {"p50_ms": 1.0, "p25_ms": 0.98, "p75_ms": 1.03, "p90_ms": 1.05, "runs": 20}
    stalled = {**calm, "p90_ms": 150.0}
    assert speedup_spread(stalled, calm) == speedup_spread(calm, calm) < 0.05
    legacy = {"p50_ms": 1.0, "p90_ms": 1.5, "runs": 20}  # no quartiles: p90 - p50 is used
    assert speedup_spread(legacy, legacy) > 0
