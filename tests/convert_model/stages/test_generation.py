"""The generation stage end to end: split graphs in the bundle, token identity, the decision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.generation import GenerationTimingConfig, TextScores
from benchmarks.generators import generation_failures
from benchmarks.parity import DEFAULT_BUDGETS, ParityBudget
from convert_model import convert, verify
from convert_model.bundle.manifest import VariantRecord
from convert_model.core.names import BASELINE
from convert_model.stages.generation import _choose
from optimizers.types import op_histogram
from tests.fixtures.models import Zoo

FAST = {"sweep": "off", "generation_timing": GenerationTimingConfig(prompts=4, rounds=2)}


@pytest.fixture(scope="module")
def mbart_bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generation") / "mbart"
    result = convert(model_zoo.mbart, out=out, precision="int8", **FAST)
    assert result.passed, result.failures
    return out


def test_generation_bundle_holds_split_graphs_runtime_and_evidence(mbart_bundle: Path):
    manifest = json.loads((mbart_bundle / "manifest.json").read_text())
    generation = manifest["generation"]
    assert generation["status"] == "pass"
    assert generation["split"]["kind"] == "encoder-decoder" and generation["split"]["merged"]
    variants = {v["name"]: v for v in generation["variants"]}
    assert set(variants) == {"fp32", "fp32-fused", "int8", "int8-decoder"}
    fp32 = variants[BASELINE]
    assert fp32["greedy_identical"] == 1.0 and fp32["beam_identical"] >= 0.98
    for variant in variants.values():
        for role, path in variant["files"].items():
            assert manifest["files"][path] == variant["details"]["sha256"][role]
        assert variant["latency"]["tokens_per_s"] > 0 and variant["speedup"] > 0
    steps = {name: v["recipe"][0]["steps"] for name, v in variants.items()}
    assert steps["fp32"] == {"encoder": [], "decoder": []}
    # The optimizer fuses the encoder; the merged decoder (an If) it cannot take, so the
    # decoder pair is fused (and quantized) one by one and merged again.
    assert steps["fp32-fused"]["encoder"][0]["fusions"]["SkipLayerNormalization"] > 0
    decoder_steps = [(s.get("graph"), s["pass"]) for s in steps["int8"]["decoder"]]
    assert decoder_steps == [
        ("decoder_first", "fuse"), ("decoder_first", "quantize_dynamic"),
        ("decoder_with_past", "fuse"), ("decoder_with_past", "quantize_dynamic"),
        (None, "merge_decoders"),
    ]
    assert all(s["fusions"]["SkipLayerNormalization"] > 0
               for s in steps["fp32-fused"]["decoder"] if s["pass"] == "fuse")
    assert steps["int8"]["encoder"][-1]["quantized_nodes"] > 0
    assert [s["pass"] for s in steps["int8-decoder"]["encoder"]] == ["fuse"]
    # Both branches of the rebuilt merged decoder run int8 MatMuls.
    ops = op_histogram(mbart_bundle / variants["int8"]["files"]["decoder"])
    assert ops["If"] == 1 and ops["MatMulInteger"] >= 2 * 6
    assert generation["recommended"] in variants
    assert (mbart_bundle / "runtime" / "__init__.py").is_file()
    assert (mbart_bundle / "generation" / "generation_config.json").is_file()
    report = (mbart_bundle / "report.md").read_text()
    assert "Generation: the bundle's loop" in report and "tokens/s" in report
    card = (mbart_bundle / "MODEL_CARD.md").read_text()
    recommended = generation["recommended"]
    assert f'Generator("BUNDLE/generation/{recommended}"' in card
    identical = variants[recommended]["greedy_identical"]
    assert f"Greedy outputs identical to `model.generate`: {identical:.1%}" in card
    assert verify(mbart_bundle).ok


def test_bundle_runtime_generates_without_torch(mbart_bundle: Path, model_zoo: Zoo):
    torch = pytest.importorskip("torch")
    from transformers import MBartForConditionalGeneration

    ids = np.array([[5, 17, 33, 8, 2], [9, 41, 2, 1, 1]], dtype=np.int64)
    mask = (ids != 1).astype(np.int64)
    script = (
        "import sys, json\n"
        "sys.modules['torch'] = None  # any torch import fails\n"
        "sys.modules['transformers'] = None\n"
        f"sys.path.insert(0, {str(mbart_bundle)!r})\n"
        "import numpy as np\n"
        "from runtime import Generator\n"
        f"g = Generator({str(mbart_bundle / 'generation' / 'fp32')!r}, "
        f"config_folder={str(mbart_bundle / 'generation')!r})\n"
        f"ids = np.array({ids.tolist()}, dtype=np.int64)\n"
        "print(json.dumps(g.generate(ids, (ids != 1).astype(np.int64)).tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=mbart_bundle, check=False)
    assert done.returncode == 0, done.stderr
    model = MBartForConditionalGeneration.from_pretrained(model_zoo.mbart).eval()
    with torch.inference_mode():
        expected = model.generate(input_ids=torch.from_numpy(ids),
                                  attention_mask=torch.from_numpy(mask), do_sample=False)
    assert json.loads(done.stdout) == expected.tolist()


def test_generation_fp32_only_and_switched_off(model_zoo: Zoo, tmp_path: Path):
    fp32_only = convert(model_zoo.mbart, out=tmp_path / "a", precision="fp32", **FAST)
    names = [v.name for v in fp32_only.manifest.generation.variants]
    assert names == [BASELINE, "fp32-fused"]
    off = convert(model_zoo.mbart, out=tmp_path / "b", precision="fp32", no_generation=True,
                  **FAST)
    assert off.manifest.generation is None and not (tmp_path / "b" / "generation").exists()


def test_generation_decoder_only_bundle(model_zoo: Zoo, tmp_path: Path):
    # auto: fp32 stays a candidate, so whether int8 meets its budget (which depends on the
    # CPU's instruction set) decides nothing this test asserts.
    result = convert(model_zoo.gpt2, out=tmp_path / "gpt2", precision="auto", **FAST)
    generation = result.manifest.to_json()["generation"]
    assert generation["split"] == {**generation["split"], "kind": "decoder-only",
                                   "files": {"decoder": "model.onnx"}}
    variants = {v["name"]: v for v in generation["variants"]}
    fp32 = variants[BASELINE]
    assert fp32["greedy_identical"] == 1.0 and fp32["beam_identical"] >= 0.98
    assert fp32["status"] == "pass" and not generation["vacuous"]
    assert "int8" in variants and "int8-decoder" not in variants, "decoder-only: one int8"
    assert variants["int8"]["files"] == {"decoder": "generation/int8/model.onnx"}
    assert not generation["labelled"] and generation["original"]["scores"] is None


def test_generation_keeps_graphs_cpu_cannot_run_out_of_the_bundle(model_zoo: Zoo,
                                                                    tmp_path: Path):
    # onnxruntime's optimizer fuses T5's position bias into RelativePositionBias, which has
    # no CPU kernel: the fusion is recorded as skipped and the graphs stay as exported.
    result = convert(model_zoo.t5, out=tmp_path / "t5", precision="int8", **FAST)
    generation = result.manifest.to_json()["generation"]
    variants = {v["name"]: v for v in generation["variants"]}
    assert variants[BASELINE]["greedy_identical"] == 1.0
    assert "fp32-fused" not in variants
    assert any("fused no sub-graph" in note for note in generation["notes"])
    skipped = variants["int8"]["recipe"][0]["steps"]["encoder"][0]
    assert "does not run on CPU" in skipped["skipped"]
    assert verify(tmp_path / "t5").ok


def test_generation_int8_of_a_merged_decoder_is_rebuilt_from_its_pair(model_zoo: Zoo,
                                                                         tmp_path: Path):
    result = convert(model_zoo.marian, out=tmp_path / "marian", precision="int8", **FAST)
    generation = result.manifest.to_json()["generation"]
    variants = {v["name"]: v for v in generation["variants"]}
    assert {"int8", "int8-decoder"} <= set(variants), generation["notes"]
    assert variants["int8"]["recipe"][0]["steps"]["decoder"][-1] == {"pass": "merge_decoders"}
    assert variants[BASELINE]["greedy_identical"] == 1.0


def _variant(name: str, greedy: float, beam: float = 1.0, tokens_per_s: float = 100.0,
             failures: tuple[str, ...] = ()) -> VariantRecord:
    precision = "fp32" if name == BASELINE else "int8"
    return VariantRecord(
        name=name, file=f"generation/{name}", sha256="", precision=precision, device="cpu",
        budget=DEFAULT_BUDGETS[precision], parity=(), failures=failures,
        files={"decoder": f"generation/{name}/model.onnx"},
        greedy_identical=greedy, beam_identical=beam, latency={"tokens_per_s": tokens_per_s},
    )


def _judge(variant: VariantRecord, budget: ParityBudget, original: TextScores | None,
           metric: str | None, scores: TextScores | None = None) -> tuple[str, ...]:
    return generation_failures(greedy=variant.greedy_identical or 0.0,
                               beam=variant.beam_identical or 0.0,
                               exact=variant.name == BASELINE, budget=budget, scores=scores,
                               original=original, metric=metric)


def test_judge_holds_fp32_to_token_identity():
    budget = DEFAULT_BUDGETS[BASELINE]
    assert not _judge(_variant(BASELINE, 1.0, 0.98), budget, None, None)
    failures = _judge(_variant(BASELINE, 0.99, 0.97), budget, None, None)
    assert len(failures) == 2 and "greedy outputs identical 99.0%" in failures[0]


def test_judge_gates_int8_on_the_task_metric_or_identity_without_labels():
    budget = DEFAULT_BUDGETS["int8"]
    original = TextScores(token_agreement=0.90, exact_match=0.8, chrf=80.0)
    within = TextScores(token_agreement=0.895, exact_match=0.8, chrf=79.0)
    beyond = TextScores(token_agreement=0.88, exact_match=0.8, chrf=79.0)
    assert not _judge(_variant("int8", 0.5), budget, original, "token_agreement", within)
    assert "token_agreement dropped" in _judge(
        _variant("int8", 0.99), budget, original, "token_agreement", beyond
    )[0]
    assert "no labels" in _judge(_variant("int8", 0.8), budget, None, None)[0]


def test_choose_fastest_within_budget_never_slower_than_fp32():
    fp32 = _variant(BASELINE, 1.0, tokens_per_s=100.0)
    fast_failing = _variant("int8", 0.5, tokens_per_s=300.0, failures=("too lossy",))
    slower = _variant("int8-decoder", 1.0, tokens_per_s=90.0)
    chosen, decided = _choose([fp32, fast_failing, slower])
    assert chosen == BASELINE
    reasons = {v.name: v.reason for v in decided}
    assert "too lossy" in reasons["int8"] and "slower than fp32" in reasons["int8-decoder"]
    # Within 3% of the fastest, the variant with more identical outputs wins.
    near = _variant("int8-decoder", 0.9, tokens_per_s=200.0)
    fastest = _variant("int8", 0.8, tokens_per_s=205.0)
    assert _choose([fp32, fastest, near])[0] == "int8-decoder"
