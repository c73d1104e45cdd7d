"""The int8 search stage in a conversion: what the manifest says about it, and its limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.latency import LatencyConfig
from convert_model import convert
from convert_model.core.errors import UsageError
from convert_model.options import ConvertOptions
from optimizers.presets import INT8_SEARCH
from tests.fixtures.models import Zoo

FAST = LatencyConfig(warmup=1, rounds=3)
OUTCOMES = ("within budget", "outside budget", "not faster than fp32 on this CPU",
            "build failed", "not clearly faster than", "no closer on the sample feeds than")


def _search(manifest: dict) -> dict:
    found = [v for v in manifest["variants"] if "int8_search" in v["details"]]
    assert len(found) == 1, "exactly one record carries the search"
    return found[0]["details"]["int8_search"] | {"record": found[0]}


def test_int8_search_records_every_step_and_where_it_stopped(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    convert(model_zoo.outlier_bert, out=out, precision="int8", latency=FAST, sweep=None)
    manifest = json.loads((out / "manifest.json").read_text())
    search = _search(manifest)
    steps = search["steps"]
    assert steps and steps[0]["candidate"] == INT8_SEARCH[0]
    assert all(s["outcome"].startswith(OUTCOMES) for s in steps)
    assert all(s["candidate"] in INT8_SEARCH for s in steps)
    assert search["stopped"] == "every candidate tried" or search["stopped"].startswith(
        "time budget")
    assert search["budget_s"] == 60.0 and search["sample_feeds"] >= 1
    ranking = search["ranking"]
    assert ranking and {"node", "own_error", "weight_spread"} <= set(ranking[0])
    # The outlier channels put their value and query projections at the top of the spread.
    assert max(r["weight_spread"] for r in ranking) > 10
    record = search["record"]
    if search["best"] is None:
        assert record["name"] == "int8-search" and record["file"] == ""
        assert record["failures"][0].startswith("no int8 candidate within budget")
    else:
        assert record["status"] == "pass" and record["file"]
        kept = {p.name for p in out.glob("model.*.onnx")}
        assert kept <= {f"model.{record['name']}.onnx"}, "only the best build is kept"


def test_int8_search_stops_at_its_time_budget(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    convert(model_zoo.outlier_bert, out=out, latency=FAST, sweep=None, int8_budget=0.001)
    search = _search(json.loads((out / "manifest.json").read_text()))
    # The presets built before the search spent the stage's budget already; the search keeps
    # its share of it, so it tries one candidate.
    assert len(search["steps"]) == 1 and search["spent_before_search_s"] > 0.001
    assert search["stopped"].startswith("time budget (0.001 s) spent before ")
    assert search["budget_s"] == 0.001


def test_int8_search_does_not_run_for_a_forced_preset(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    convert(model_zoo.outlier_bert, out=out, preset="cpu-int8-nbits8", latency=FAST,
            sweep=None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [v["name"] for v in manifest["variants"]] == ["fp32", "cpu-int8-nbits8"]
    assert not any("int8_search" in v["details"] for v in manifest["variants"])


def test_convert_options_rejects_a_search_budget_that_is_not_positive():
    with pytest.raises(UsageError, match="--int8-budget must be a finite number of seconds"):
        ConvertOptions(int8_budget_s=0)
