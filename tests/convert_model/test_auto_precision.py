"""--precision auto: every candidate built, measured, and the choice explained in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.latency import LatencyConfig
from benchmarks.parity import ParityBudget
from convert_model import ParityError, convert, verify
from tests.fixtures.models import Zoo

FAST = LatencyConfig(warmup=1, rounds=5)


@pytest.fixture(scope="module")
def bert_eval(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eval set labelled by the original model itself, so the metric is meaningful."""
    import torch
    from transformers import AutoModelForSequenceClassification

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 60, size=(48, 24)).astype(np.int64)
    ids[:, 0] = 2
    mask = np.ones_like(ids)
    mask[::3, 18:] = 0
    types = np.zeros_like(ids)
    model = AutoModelForSequenceClassification.from_pretrained(model_zoo.bert).eval()
    with torch.inference_mode():
        logits = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types),
        ).logits.numpy()
    path = tmp_path_factory.mktemp("eval") / "eval.npz"
    np.savez(
        path, input_ids=ids, attention_mask=mask, token_type_ids=types, labels=logits.argmax(-1)
    )
    return path


def test_auto_builds_measures_and_explains_every_candidate(
    model_zoo: Zoo, bert_eval: Path, tmp_path: Path
):
    out = tmp_path / "b"
    result = convert(model_zoo.bert, out=out, eval_data=bert_eval, metric="accuracy", latency=FAST)
    m = json.loads((out / "manifest.json").read_text())
    names = [v["name"] for v in m["variants"]]
    # fp32 presets first, then the int8 search's one record: its best candidate, or itself.
    assert names[:3] == ["fp32", "cpu-fp32", "gpu-fp16"] and len(names) == 4
    assert names[3] == "int8-search" or names[3].startswith("cpu-int8")
    assert "cpu-int8-static" not in names, "static int8 is for non-transformers under auto"
    by_name = {v["name"]: v for v in m["variants"]}
    int8 = by_name[names[3]]
    assert int8["details"]["int8_search"]["steps"], "the search says what it tried"
    assert m["recommended"] == result.manifest.recommended and m["recommended"] != "gpu-fp16"
    assert by_name[m["recommended"]]["reason"].startswith("recommended")
    for v in m["variants"]:
        assert v["reason"], f"{v['name']} has no reason"
        if v["name"] == "int8-search":
            continue  # no build within budget: nothing measured on the eval set
        assert any(p["check"] == -1 for p in v["parity"]), "eval-set parity recorded"
        assert v["task_metric"] is not None
    assert by_name["fp32"]["task_metric"] == pytest.approx(1.0)
    for name in ("fp32", "cpu-fp32"):
        assert by_name[name]["latency"]["p50_ms"] > 0 and by_name[name]["speedup"] > 0
    assert by_name["gpu-fp16"]["latency"] is None and by_name["gpu-fp16"]["device"] == "cuda"
    assert int8["budget"]["min_cosine"] == 0.99
    assert by_name["cpu-fp32"]["details"]["fusions"]["Attention"] == 2
    assert m["measurement"]["threads"] >= 1
    assert "instructions" in m["measurement"]["cpu"]
    assert m["measurement"]["eval"] == {"metric": "accuracy", "output": "logits", "examples": 48}
    assert m["measurement"]["original"]["task_metric"] == pytest.approx(1.0)
    kept = {v["name"] for v in m["variants"] if v["file"]}
    assert kept <= {"fp32", m["recommended"], "gpu-fp16"}
    assert sorted(p.name for p in out.glob("model*.onnx")) == sorted(
        f"model.{n}.onnx" if n != "fp32" else "model.onnx" for n in kept
    )
    assert verify(out).ok


def test_precision_int8_fails_the_gate_when_no_int8_variant_fits(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    with pytest.raises(ParityError) as info:
        convert(
            model_zoo.bert,
            out=out,
            precision="int8",
            latency=FAST,
            # int8 held to a tighter limit than int8 arithmetic can meet
            accuracy_budget={
                "fp32": ParityBudget(),
                "int8": ParityBudget(max_abs_diff=1e-7),
                "fp16": ParityBudget(),
            },
        )
    assert any(
        line.startswith("int8-search: outside the accuracy budget: no int8 candidate within")
        for line in info.value.failures
    )
    assert any(line.startswith("cpu-int8-static: outside the accuracy budget")
               for line in info.value.failures)
    assert json.loads((out / "manifest.json").read_text())["recommended"] is None
