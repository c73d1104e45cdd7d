"""compare: a real slowdown (a graph given extra work) is flagged; identical reports pass."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.compare_reports import compare, parse_fraction
from benchmarks.latency import LatencyConfig, measure_interleaved
from benchmarks.report import build_report
from convert_model.bundle.manifest import Manifest, read_manifest
from convert_model.cli import main
from converters.onnx_graph import runner as ort_runner

WIDTH = 64


def _graph(path: Path, extra: int) -> Path:
    """x[batch, 64] @ W + b, then ``extra`` more MatMul+Add pairs that add work, not meaning."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(
        (rng.standard_normal((WIDTH, WIDTH)) / 8).astype(np.float32), "w"
    )
    bias = numpy_helper.from_array(np.zeros(WIDTH, np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["a0"]),
    ]
    last = "a0"
    for i in range(extra):
        nodes += [
            helper.make_node("MatMul", [last, "w"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", "b"], [f"e{i}"]),
        ]
        last = f"e{i}"
    nodes.append(helper.make_node("Identity", [last], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "slowed" if extra else "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", WIDTH])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def timings(tmp_path_factory: pytest.TempPathFactory):
    """The plain graph as 'original', a copy of it, and a slowed copy, timed interleaved."""
    folder = tmp_path_factory.mktemp("slow")
    plain = ort_runner(_graph(folder / "plain.onnx", 0), 1)
    copy_ = ort_runner(_graph(folder / "copy.onnx", 0), 1)
    slowed = ort_runner(_graph(folder / "slowed.onnx", 300), 1)
    feed = {"x": np.ones((8, WIDTH), np.float32)}
    runners = {
        "original": lambda: plain(feed),
        "fast": lambda: copy_(feed),
        "slow": lambda: slowed(feed),
    }
    return measure_interleaved(runners, LatencyConfig(warmup=3, rounds=40), batch_size=8)


def _report_with(manifest: Manifest, timings, variant_timing: str) -> dict:
    """The bundle's report with every CPU variant timed as ``variant_timing`` vs 'original'."""
    original = timings["original"]
    chosen = timings[variant_timing]
    variants = tuple(
        replace(v, latency=chosen.to_json(), speedup=round(original.p50_ms / chosen.p50_ms, 3))
        if v.latency
        else v
        for v in manifest.variants
    )
    measurement = {
        **manifest.measurement,
        "original": {**manifest.measurement["original"], "latency": original.to_json()},
    }
    return build_report(replace(manifest, variants=variants, measurement=measurement))


def test_compare_flags_a_real_slowdown(swept_bundle: Path, timings):
    assert timings["slow"].p50_ms > 3 * timings["fast"].p50_ms, "the extra work must show"
    manifest = read_manifest(swept_bundle)
    baseline = _report_with(manifest, timings, "fast")
    new = _report_with(manifest, timings, "slow")
    result = compare(new, baseline, max_slowdown=0.10)
    assert not result.ok
    timed = [v["name"] for v in new["variants"] if v["latency"]]
    assert len(result.regressions) == len(timed)
    assert all("slower by" in line for line in result.regressions)
    table = result.markdown()
    assert "❌" in table and "| variant | status | speed-up (baseline → new)" in table
    assert compare(baseline, new).ok, "a speed-up is not a regression"


def test_compare_passes_identical_reports(swept_bundle: Path):
    report = json.loads((swept_bundle / "report.json").read_text())
    result = compare(report, copy.deepcopy(report))
    assert result.ok and result.regressions == ()
    assert "✅ no regression" in result.markdown()


def test_compare_ignores_a_slowdown_within_the_runs_noise(swept_bundle: Path):
    baseline = json.loads((swept_bundle / "report.json").read_text())
    new = copy.deepcopy(baseline)
    for v in new["variants"]:
        if v["speedup"]:
            v["speedup"] *= 0.8  # 20% slower ...
            v["speedup_spread"] = 0.2  # ... but the run itself spreads ±20%
    result = compare(new, baseline, max_slowdown=0.10)
    assert result.ok
    assert any("within the runs' noise" in n for n in result.notes)


def test_compare_flags_parity_and_status_drops(swept_bundle: Path):
    baseline = json.loads((swept_bundle / "report.json").read_text())
    new = copy.deepcopy(baseline)
    target = new["variants"][0]
    target["parity"]["min_cosine"] -= 0.01
    target["status"] = "fail"
    target["failures"] = ["logits (check 0): min cosine 0.98 < 0.99"]
    result = compare(new, baseline, max_parity_drop=0.001)
    assert any("min cosine" in line and target["name"] in line for line in result.regressions)
    assert any("outside its accuracy budget" in line for line in result.regressions)


def test_parse_fraction_reads_percent_and_plain_numbers():
    assert parse_fraction("10%") == pytest.approx(0.10)
    assert parse_fraction("0.25") == pytest.approx(0.25)
    with pytest.raises(ValueError, match="not a fraction"):
        parse_fraction("ten")


def test_cli_compare_exit_codes(swept_bundle: Path, timings, tmp_path: Path, capsys):
    manifest = read_manifest(swept_bundle)
    base, slow = tmp_path / "base.json", tmp_path / "slow.json"
    base.write_text(json.dumps(_report_with(manifest, timings, "fast")))
    slow.write_text(json.dumps(_report_with(manifest, timings, "slow")))
    assert main(["compare", str(base), str(base)]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["compare", str(slow), str(base), "--max-slowdown", "10%"]) == 1
    assert "regression" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["compare", str(bad), str(base)]) == 2
    assert "report_schema_version" in capsys.readouterr().err
    assert main(["compare", str(base), str(base), "--max-slowdown", "lots"]) == 2


def _on_machine(report: dict, instructions: list[str], threads: int) -> dict:
    report = copy.deepcopy(report)
    report["machine"]["threads"] = threads
    report["machine"]["cpu"] = {**(report["machine"].get("cpu") or {}),
                                "instructions": instructions}
    return report


def test_compare_names_a_different_instruction_set_and_thread_count(swept_bundle: Path):
    report = json.loads((swept_bundle / "report.json").read_text())
    vnni = _on_machine(report, ["avx2", "avx512f", "avx512_vnni"], 2)
    avx2 = _on_machine(report, ["avx2"], 4)
    result = compare(avx2, vnni)
    assert result.hardware == (
        "instruction sets differ: only the baseline has avx512_vnni, avx512f",
        "thread counts differ: baseline 2, new 4",
    )
    assert compare(vnni, copy.deepcopy(vnni)).hardware == ()


def test_cli_compare_exits_4_across_hardware_unless_allowed(swept_bundle: Path,
                                                            tmp_path: Path, capsys):
    report = json.loads((swept_bundle / "report.json").read_text())
    vnni, avx2 = tmp_path / "vnni.json", tmp_path / "avx2.json"
    vnni.write_text(json.dumps(_on_machine(report, ["avx2", "avx512_vnni"], 2)))
    avx2.write_text(json.dumps(_on_machine(report, ["avx2"], 2)))
    assert main(["compare", str(avx2), str(vnni)]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only the baseline has avx512_vnni" in err[0]
    assert "--allow-different-hardware" in err[0]
    assert main(["compare", str(avx2), str(vnni), "--allow-different-hardware"]) == 0
    assert "instruction sets differ" in capsys.readouterr().out


def test_cli_compare_exits_2_on_a_report_with_nan_figures(swept_bundle: Path,
                                                          tmp_path: Path, capsys):
    report = json.loads((swept_bundle / "report.json").read_text())
    nan = copy.deepcopy(report)
    for v in nan["variants"]:
        v["speedup"] = float("nan")
    good, bad = tmp_path / "good.json", tmp_path / "nan.json"
    good.write_text(json.dumps(report))
    bad.write_text(json.dumps(nan))  # json writes NaN, and reads it back
    assert main(["compare", str(bad), str(good)]) == 2
    assert "NaN/Inf figures" in capsys.readouterr().err


def test_cli_compare_into_a_closed_pipe_is_not_an_error(swept_bundle: Path):
    import subprocess
    import sys

    report = swept_bundle / "report.json"
    child = subprocess.Popen(
        [sys.executable, "-m", "convert_model.cli", "compare", str(report), str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the first line is written
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "internal error" not in err
