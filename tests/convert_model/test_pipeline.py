"""End-to-end conversions of every checkpoint form through the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from convert_model import ParityError, convert, verify
from convert_model.bundle.manifest import read_manifest
from tests.fixtures.models import CUSTOM_SPEC, Zoo

HF_CASES = [
    # (zoo attribute, form, task, strategy)
    ("bert", "hf-model", "text-classification", "optimum"),
    ("distilbert", "hf-model", "feature-extraction", "optimum"),
    ("roberta", "hf-model", "token-classification", "optimum"),
    ("gpt2", "hf-model", "text-generation", "optimum"),
    ("vit", "hf-model", "image-classification", "optimum"),
    ("trainer_checkpoint", "hf-trainer-checkpoint", "text-classification", "optimum"),
]


def _assert_bundle(out: Path, form: str, strategy: str) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "pass"
    assert manifest["source"]["form"] == form
    assert manifest["export"]["strategy"] == strategy
    winners = [a for a in manifest["export"]["attempts"] if a["success"]]
    assert [a["strategy"] for a in winners] == [strategy]
    assert manifest["recommended"] in ("fp32", "cpu-fp32")
    variant = manifest["variants"][0]
    assert variant["name"] == "fp32" and variant["file"] == "model.onnx"
    assert variant["status"] == "pass"
    checks = {p["check"] for p in variant["parity"]}
    assert len(checks) >= 2, "parity must run at two or more shapes"
    for record in variant["parity"]:
        assert record["max_abs_diff"] <= 1e-4
        assert record["min_cosine"] is None or record["min_cosine"] >= 0.9999
    onnx.checker.check_model(str(out / "model.onnx"))
    assert verify(out).ok
    for name in ("manifest.json", "sample_inputs.npz", "reference_outputs.npz", "MODEL_CARD.md"):
        assert (out / name).is_file()
    card = (out / "MODEL_CARD.md").read_text()
    recommended = next(v for v in manifest["variants"] if v["name"] == manifest["recommended"])
    assert f'ort.InferenceSession("{recommended["file"]}"' in card
    assert manifest["source"]["sha256"] in card
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "temporary folder left behind"
    return manifest


@pytest.mark.parametrize(("attr", "form", "task", "strategy"), HF_CASES)
def test_convert_hf_folder_passes_parity(
    model_zoo: Zoo, tmp_path: Path, attr, form, task, strategy
):
    out = tmp_path / "bundle"
    result = convert(getattr(model_zoo, attr), out=out, precision="fp32")
    assert result.passed and result.out == out
    manifest = _assert_bundle(out, form, strategy)
    assert manifest["task"] == task
    dims = {i["name"]: i["dynamic_axes"] for i in manifest["inputs"]}
    first = next(iter(dims.values()))
    assert "0" in first, "batch axis must be dynamic"
    padding = manifest["export"]["padding"]
    assert padding["trimmed"] == (attr in PADDED_BACK), padding
    if padding["trimmed"]:
        assert padding["padded_outputs"] == PADDED_BACK[attr]
        assert padding["probe"]["max_abs_diff"] <= 1e-4
        assert "attention_mask" in padding["inputs"] and "input_ids" in padding["inputs"]


# The models whose trailing padding is cut inside the graph, and the outputs padded back:
# gpt2 generates (its graphs keep their padding), vit has no mask.
PADDED_BACK = {"bert": [], "distilbert": ["last_hidden_state"], "roberta": ["logits"],
               "trainer_checkpoint": []}


def test_convert_keeps_padding_when_asked(model_zoo: Zoo, tmp_path: Path):
    result = convert(model_zoo.bert, out=tmp_path / "b", precision="fp32", keep_padding=True,
                     sweep=None)
    assert result.manifest.export["padding"] == {"trimmed": False, "reason": "--keep-padding"}
    nodes = onnx.load(str(tmp_path / "b" / "model.onnx")).graph.node
    assert not [n.name for n in nodes if n.name.startswith("padding_trim/")]


def test_convert_hf_folder_uses_tokenizer_text_and_copies_its_files(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    convert(model_zoo.bert, out=out, precision="fp32")
    for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    with np.load(out / "sample_inputs.npz") as data:
        ids = data["1/input_ids"]
        mask = data["1/attention_mask"]
    assert ids.shape[0] == 3 and (mask == 0).any(), "second check pads three sentences"
    assert (ids[:, 0] == 2).all(), "sequences start with [CLS], so real tokenizer text was used"


def test_convert_trainer_checkpoint_never_copies_trainer_state(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    convert(model_zoo.trainer_checkpoint, out=out, precision="fp32")
    manifest = read_manifest(out)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
        assert not (out / name).exists()
        assert name not in manifest.source["files"]
    assert any("trainer state ignored" in n for n in manifest.notes)


@pytest.mark.parametrize("task", ["feature-extraction", "sequence-classification"])
def test_convert_hf_folder_honours_task(model_zoo: Zoo, tmp_path: Path, task):
    result = convert(model_zoo.bert, out=tmp_path / "b", task=task, precision="fp32")
    expected = {"feature-extraction": "last_hidden_state", "sequence-classification": "logits"}[
        task
    ]
    assert [o["name"] for o in result.manifest.outputs] == [expected]


CUSTOM_CASES = [
    # (zoo attribute, needs class, form, strategy)
    ("custom_safetensors", True, "state-dict", "dynamo"),
    ("custom_pt", True, "state-dict", "dynamo"),
    ("custom_pt2", False, "torch-export", "dynamo"),
    ("custom_torchscript", False, "torchscript", "torchscript"),
]


@pytest.mark.parametrize(("attr", "needs_class", "form", "strategy"), CUSTOM_CASES)
def test_convert_plain_module_passes_parity(
    model_zoo: Zoo, tmp_path: Path, attr, needs_class, form, strategy
):
    options = {"input_spec": CUSTOM_SPEC} if attr != "custom_pt2" else {}
    if needs_class:
        options["model_class"] = f"{model_zoo.model_file}:TinyTagger"
    out = tmp_path / "bundle"
    convert(getattr(model_zoo, attr), out=out, precision="fp32", **options)
    manifest = _assert_bundle(out, form, strategy)
    assert [o["name"] for o in manifest["outputs"]] == ["output_0", "output_1"]
    assert [i["name"] for i in manifest["inputs"]] == ["features", "mask"]
    skipped = {a["strategy"]: a for a in manifest["export"]["attempts"] if a["skipped"]}
    assert skipped["optimum"]["error"] == "not a transformers model"
    assert skipped["source-onnx"]["error"] == "the source is not ONNX"


def test_convert_torchscript_records_dynamo_as_not_applicable(model_zoo: Zoo, tmp_path: Path):
    result = convert(
        model_zoo.custom_torchscript, out=tmp_path / "b", input_spec=CUSTOM_SPEC, precision="fp32"
    )
    attempts = {a["strategy"]: a for a in result.manifest.export["attempts"]}
    assert attempts["dynamo"]["skipped"] and "TorchScript" in attempts["dynamo"]["error"]


def test_convert_falls_back_and_records_the_failure(model_zoo: Zoo, tmp_path: Path, monkeypatch):
    from converters import export_dynamo

    def broken(loaded, path, config):
        raise RuntimeError("simulated dynamo failure")

    monkeypatch.setattr(
        export_dynamo,
        "DYNAMO",
        export_dynamo.ExportStrategy(name="dynamo", applies=export_dynamo._applies, export=broken),
    )
    result = convert(
        model_zoo.custom_safetensors,
        out=tmp_path / "b",
        input_spec=CUSTOM_SPEC,
        model_class=f"{model_zoo.model_file}:TinyTagger",
        precision="fp32",
    )
    attempts = result.manifest.export["attempts"]
    assert [(a["strategy"], a["success"]) for a in attempts] == [
        ("source-onnx", False),
        ("onnxmltools", False),
        ("catboost", False),
        ("fasttext", False),
        ("optimum", False),
        ("dynamo", False),
        ("torchscript", True),
    ]
    assert "simulated dynamo failure" in attempts[5]["error"]
    assert result.manifest.export["strategy"] == "torchscript"


def test_convert_onnx_file_checks_it_against_itself(model_zoo: Zoo, tmp_path: Path):
    first = convert(model_zoo.bert, out=tmp_path / "first", precision="fp32")
    result = convert(first.out / "model.onnx", out=tmp_path / "second", precision="fp32")
    assert result.manifest.source["form"] == "onnx"
    assert result.manifest.reference.startswith("source ONNX")
    assert result.manifest.export["strategy"] == "source-onnx"


def test_convert_external_data_when_graph_exceeds_threshold(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    result = convert(model_zoo.bert, out=out, external_data_threshold=10_000, precision="fp32")
    assert result.manifest.export["external_data"] is True
    assert (out / "model.onnx.data").is_file()
    assert (out / "model.onnx.data").stat().st_size > (out / "model.onnx").stat().st_size
    assert verify(out).ok


def _tamper_initializer(path: Path) -> None:
    """Change the classifier's weights."""
    model = onnx.load(str(path))
    target = next(t for t in model.graph.initializer if t.name == "classifier.weight")
    array = onnx.numpy_helper.to_array(target).copy() * 1.5 + 0.05
    target.CopyFrom(onnx.numpy_helper.from_array(array, target.name))
    onnx.save_model(model, str(path))


def test_convert_fails_parity_when_graph_is_tampered(model_zoo: Zoo, tmp_path: Path, monkeypatch):
    from converters import export as export_module

    original = export_module.export

    def tampering(loaded, folder, config, log=lambda _: None):
        graph = original(loaded, folder, config, log)
        _tamper_initializer(graph.path)
        return graph

    monkeypatch.setattr(export_module, "export", tampering)
    out = tmp_path / "b"
    with pytest.raises(ParityError) as info:
        convert(model_zoo.bert, out=out, precision="fp32")
    assert info.value.failures and all("fp32: logits" in f for f in info.value.failures)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "fail"
    assert manifest["variants"][0]["status"] == "fail"


def test_verify_fails_when_a_file_is_tampered(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    convert(model_zoo.bert, out=out, precision="fp32")
    _tamper_initializer(out / "model.onnx")
    result = verify(out)
    assert not result.ok
    assert any("model.onnx: sha256 differs" in p for p in result.problems)
    assert any(p.startswith("fp32: logits") for p in result.problems), "parity re-run catches drift"


def test_verify_fails_when_a_byte_of_the_inputs_changes(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "b"
    convert(model_zoo.bert, out=out, precision="fp32")
    config = out / "config.json"
    config.write_bytes(config.read_bytes().replace(b"}", b" }", 1))
    assert [p for p in verify(out).problems] == [
        "config.json: sha256 differs from the manifest (file changed)"
    ]
