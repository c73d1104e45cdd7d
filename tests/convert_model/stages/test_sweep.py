"""The sweep stage in the pipeline: on by default, configurable, off with sweep="off"."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.latency import LatencyConfig
from benchmarks.sweep import SweepConfig
from convert_model import convert, verify
from convert_model.core.errors import UsageError
from convert_model.options import options_from
from convert_model.stages.sweep import (
    TABULAR_SWEEP,
    input_axes,
    max_seq_len,
    sweep_config,
    sweep_feed,
)
from converters.types import TensorSpec
from tests.fixtures.models import CUSTOM_SPEC, Zoo

FAST = LatencyConfig(warmup=1, rounds=3)


def _custom(model_zoo: Zoo) -> dict:
    return {
        "input_spec": CUSTOM_SPEC,
        "model_class": f"{model_zoo.model_file}:TinyTagger",
        "precision": "fp32",
        "latency": FAST,
    }


def test_convert_sweeps_a_module_without_sequence_axis_over_batch_only(
    model_zoo: Zoo, tmp_path: Path
):
    out = tmp_path / "b"
    sweep = SweepConfig(batch_sizes=(1, 3), seq_lens=(8,), warmup=0, rounds=2)
    convert(model_zoo.custom_safetensors, out=out, sweep=sweep, **_custom(model_zoo))
    report = json.loads((out / "report.json").read_text())
    points = report["sweep"]["points"]
    assert [(p["batch_size"], p["seq_len"]) for p in points] == [(1, None), (3, None)]
    assert points[1]["input_shapes"] == {"features": [3, 12], "mask": [3, 12]}
    cpu = {v["name"] for v in report["variants"] if v["device"] == "cpu" and v["size_bytes"]}
    assert set(points[0]["latency"]) == cpu | {"original"} and "fp32" in cpu
    assert report["sweep"]["footprints"]["fp32"]["cold_start_ms"] > 0
    assert "latency_vs_seq" not in report["plots"], "no sequence axis, no such plot"
    assert (out / "plots" / "throughput_vs_batch.png").is_file()
    assert verify(out).ok


def test_convert_without_sweep_still_writes_the_reports(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    result = convert(model_zoo.custom_safetensors, out=out, sweep="off", **_custom(model_zoo))
    report = json.loads((out / "report.json").read_text())
    assert report["sweep"] is None and report["variants"][0]["footprint"] is None
    assert set(report["plots"]) == {"parity"}
    assert {"report.json", "report.md", "report.html", "plots/parity.png"} <= set(
        result.manifest.files
    )
    assert verify(out).ok


def test_max_seq_len_reads_the_position_limit_from_the_config():
    config = SimpleNamespace(max_position_embeddings=512)
    assert max_seq_len(SimpleNamespace(hf_model=SimpleNamespace(config=config))) == 512  # type: ignore[arg-type]
    gpt2 = SimpleNamespace(config=SimpleNamespace(n_positions=1024))
    assert max_seq_len(SimpleNamespace(hf_model=gpt2)) == 1024  # type: ignore[arg-type]
    assert max_seq_len(SimpleNamespace(hf_model=None)) is None  # type: ignore[arg-type]


def test_input_axes_keeps_named_dims_only():
    spec = TensorSpec(name="ids", dtype="int64", dims=("batch", "seq", 4))
    assert input_axes([spec]) == {"ids": {0: "batch", 1: "seq"}}


def test_sweep_config_gives_trees_batch_1_and_1000_when_no_sweep_was_asked_for():
    tree, torch_model = SimpleNamespace(framework="xgboost"), SimpleNamespace(framework="torch")
    assert sweep_config("auto", tree) is TABULAR_SWEEP  # type: ignore[arg-type]
    assert TABULAR_SWEEP.batch_sizes == (1, 1000)
    assert sweep_config("auto", torch_model) == SweepConfig()  # type: ignore[arg-type]
    asked = SweepConfig(batch_sizes=(1, 4, 16))  # equal to the default, but asked for
    assert sweep_config(asked, tree) is asked  # type: ignore[arg-type]
    assert sweep_config("off", tree) is None  # type: ignore[arg-type]


def test_sweep_feed_tiles_trees_from_their_adversarial_rows_and_others_from_batch_1():
    single, adversarial = {"input": np.zeros((1, 3))}, {"input": np.ones((256, 3))}
    head = {"input": np.full((1, 3), 7.0)}
    original = SimpleNamespace(
        examples=(single, adversarial), eval_set=SimpleNamespace(head=lambda n: head),
        latency_feed=lambda: head,
    )
    tree, torch_model = SimpleNamespace(framework="lightgbm"), SimpleNamespace(framework="torch")
    assert sweep_feed(tree, original) is adversarial  # type: ignore[arg-type]
    assert sweep_feed(torch_model, original) is head  # type: ignore[arg-type]


def _sweep_option(text: object) -> object:
    return options_from({} if text is None else {"sweep": text}).sweep


def test_cli_sweep_option_parses_points_and_off():
    assert _sweep_option(None) == "auto"
    assert _sweep_option("off") == "off"
    parsed = _sweep_option("1,8:32,256")
    assert isinstance(parsed, SweepConfig)
    assert parsed.batch_sizes == (1, 8) and parsed.seq_lens == (32, 256)
    only_batches = _sweep_option("2,4")
    assert isinstance(only_batches, SweepConfig)
    assert only_batches.seq_lens == SweepConfig().seq_lens
    with pytest.raises(UsageError, match="--sweep: must be 'auto', 'off' or like"):
        _sweep_option("1,x")
    with pytest.raises(UsageError, match="batch_sizes must"):
        _sweep_option("0")


def test_position_limit_of_a_composite_config_comes_from_its_text_config():
    from transformers import CLIPConfig

    from convert_model.stages.sweep import config_position_limit

    config = CLIPConfig(text_config={"max_position_embeddings": 64},
                        vision_config={"image_size": 32, "patch_size": 8})
    assert config_position_limit(config) == 64
    assert config_position_limit(None) is None


def test_sweep_error_cell_says_why():
    from benchmarks.report_tables import sweep_rows

    error = ("InvalidArgument: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status "
             "code returned while running Gather node")
    report = {"recommended": None, "sweep": {"points": [
        {"batch_size": 1, "seq_len": 128, "latency": {}, "speedup": {},
         "errors": {"fp32": error}}]}}
    header, rows = sweep_rows(report)
    assert header == ["batch × seq", "fp32"]
    assert rows[0][1].startswith("error: InvalidArgument: [ONNXRuntimeError] : 2")
