"""The tree reference models: exact parity with the library, and latency at batch 1 and 1,000."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.evaluate import EVAL_CHECK
from benchmarks.latency import LatencyConfig
from convert_model import convert
from reference_models import (
    BuiltReference,
    articlequality,
    revertrisk_catboost,
    revertrisk_language_agnostic,
)

FAST = LatencyConfig(warmup=1, rounds=3)
FEATURES = {
    "articlequality": articlequality.FEATURES,
    "revertrisk-language-agnostic": revertrisk_language_agnostic.FEATURES,
    "revertrisk-catboost": revertrisk_catboost.FEATURES,
}
LIBRARY = {
    "articlequality": "lightgbm",
    "revertrisk-language-agnostic": "xgboost",
    "revertrisk-catboost": "catboost",
}
STRATEGY = {"lightgbm": "onnxmltools", "xgboost": "onnxmltools", "catboost": "catboost"}


@pytest.fixture(scope="module")
def converted(
    built: Callable[[str], BuiltReference],
    reference_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], Path]:
    """Convert ``reference:NAME`` once per module with the default sweep; return the bundle."""
    home = tmp_path_factory.mktemp("convert-model-cache")
    (home / "reference").symlink_to(reference_cache, target_is_directory=True)
    bundles: dict[str, Path] = {}

    def convert_once(name: str) -> Path:
        if name not in bundles:
            built(name)
            out = tmp_path_factory.mktemp(name) / "bundle"
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("CONVERT_MODEL_CACHE", str(home))
                convert(f"reference:{name}", out=out, latency=FAST)
            bundles[name] = out
        return bundles[name]

    return convert_once


def _read(out: Path, name: str) -> dict[str, Any]:
    return json.loads((out / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_tree_reference_model_converts_with_identical_labels_and_probabilities_within_1e_5(
    name: str, converted: Callable[[str], Path], built: Callable[[str], BuiltReference]
) -> None:
    manifest = _read(converted(name), "manifest.json")
    assert manifest["source"]["form"] == LIBRARY[name]
    assert manifest["export"]["strategy"] == STRATEGY[LIBRARY[name]]
    assert manifest["input_schema"]["features"] == list(FEATURES[name])
    assert manifest["input_schema"]["missing"] == "NaN"
    fp32 = manifest["variants"][0]
    assert fp32["name"] == "fp32" and fp32["status"] == "pass", fp32["failures"]
    assert fp32["budget"]["max_abs_diff"] == 1e-5
    assert fp32["details"]["differing_rows"] == []
    by_output: dict[str, list[dict[str, Any]]] = {}
    for record in fp32["parity"]:
        by_output.setdefault(record["name"], []).append(record)
    assert set(by_output) == {"label", "probabilities"}
    for records in by_output.values():
        assert {r["check"] for r in records} == {0, 1, EVAL_CHECK}, "adversarial rows and eval"
    assert all(r["max_abs_diff"] == 0 for r in by_output["label"]), "labels identical"
    assert all(r["max_abs_diff"] <= 1e-5 for r in by_output["probabilities"])
    assert all(r["top1_agreement"] == 1.0 for r in by_output["probabilities"])
    (eval_record,) = [r for r in by_output["probabilities"] if r["check"] == EVAL_CHECK]
    assert eval_record["shape"][0] == manifest["measurement"]["eval"]["examples"] >= 200
    assert fp32["task_metric"] == manifest["measurement"]["original"]["task_metric"]
    assert fp32["task_metric"] > built(name).model.chance


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_tree_reference_model_report_times_library_and_onnxruntime_at_batch_1_and_1000(
    name: str, converted: Callable[[str], Path]
) -> None:
    out = converted(name)
    report = _read(out, "report.json")
    assert report["reference"] == f"original model ({LIBRARY[name]} predict)"
    sweep = report["sweep"]
    assert sweep["config"]["batch_sizes"] == [1, 1000] and sweep["seq_axis"] is None
    points = sweep["points"]
    assert [(p["batch_size"], p["seq_len"]) for p in points] == [(1, None), (1000, None)]
    features = len(FEATURES[name])
    assert [p["input_shapes"] for p in points] == [
        {"input": [1, features]},
        {"input": [1000, features]},
    ]
    for point in points:
        assert point["errors"] == {}
        assert {"original", "fp32"} <= set(point["latency"])
        assert all(stats["p50_ms"] > 0 for stats in point["latency"].values())
        assert point["speedup"]["fp32"] > 0
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for point in points:
        original_ms = f"{point['latency']['original']['p50_ms']:.2f}"
        assert f"| {point['batch_size']} | {original_ms} | " in markdown
