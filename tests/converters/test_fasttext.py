"""fastText models: a graph built with onnx.helper that predicts what fastText predicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from convert_model import convert
from convert_model.core.errors import CheckpointError
from converters.fasttext_model import load_fasttext
from converters.registry import LoadOptions
from converters.types import CheckpointForm
from tests.fixtures.fasttext_models import WORDS, train_tiny

TEXTS = ["kalo mine", "", "__label__t1 ruto vévé", "unseen wörds only", "été\t東京  x x",
         "__label__t9 emoji😀 naïve", "kalo </s> mine"]


@pytest.fixture(scope="module", params=["softmax", "ova"])
def bin_file(request, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp(f"ft-{request.param}")
    model = train_tiny(folder, loss=request.param, multi_label=request.param == "ova")
    path = folder / f"{request.param}.bin"
    model.save_model(str(path))
    return path


def test_fasttext_converts_with_fasttexts_probabilities(bin_file: Path, tmp_path: Path):
    result = convert(bin_file, out=tmp_path / "b", sweep=None)
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["source"]["form"] == "fasttext"
    assert manifest["export"]["strategy"] == "fasttext"
    fp32 = manifest["variants"][0]
    assert fp32["status"] == "pass" and fp32["budget"]["max_abs_diff"] == 1e-5
    assert fp32["details"]["differing_rows"] == []
    assert all(p["max_abs_diff"] <= 1e-5 for p in fp32["parity"])
    schema = manifest["input_schema"]
    assert schema["kind"] == "fasttext" and schema["input"] == "ids" and schema["padding"] == -1
    assert schema["activation"] == ("softmax" if "softmax" in bin_file.name else "sigmoid")
    assert {"fasttext_tokenizer.json", "runtime/fasttext_text.py"} <= set(manifest["files"])
    graph = onnx.load(str(result.out / "model.onnx"))
    ops = {n.op_type for n in graph.graph.node}
    assert "CumSum" in ops and ("Softmax" in ops) == ("softmax" in bin_file.name)


def test_fasttext_bundle_predicts_top_k_like_fasttext_without_fasttext(bin_file: Path,
                                                                       tmp_path: Path):
    import fasttext

    out = convert(bin_file, out=tmp_path / "b", sweep=None, precision="fp32").out
    script = f"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"fasttext", "torch", "convert_model", "converters"}}:
            raise ImportError(name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(out)!r})
import onnxruntime as ort
from runtime.fasttext_text import FastTextText, top_k
text = FastTextText.load({str(out)!r})
session = ort.InferenceSession({str(out / "model.onnx")!r})
(probabilities,) = session.run(None, {{"ids": text.batch(json.loads(sys.argv[1]))}})
print(json.dumps([[list(l), v.tolist()] for l, v in top_k(probabilities, text.labels, k=-1)]))
"""
    texts = [*TEXTS, " ".join(WORDS * 3)]
    done = subprocess.run([sys.executable, "-I", "-c", script, json.dumps(texts)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout)
    model = fasttext.load_model(str(bin_file))
    for text, (labels, values) in zip(texts, served, strict=True):
        expected_labels, expected = model.predict([text], k=-1)
        got = dict(zip(labels, values, strict=True))
        pairs = zip(expected_labels[0], expected[0], strict=True)
        assert max(abs(got[n] - v) for n, v in pairs) <= 1e-5
        for k in (1, 2):  # the same top-k, ties at the k-th probability aside
            if k == len(expected[0]) or expected[0][k - 1] != expected[0][k]:
                assert set(labels[:k]) == set(expected_labels[0][:k]), text


HS, LOSS_OFFSET = 1, 8 + 6 * 4  # fastText's loss_name::hs; args' loss field after the header


def test_fasttext_hierarchical_softmax_is_refused(bin_file: Path, tmp_path: Path):
    data = bytearray(bin_file.read_bytes())  # the same model, its loss set to hs
    data[LOSS_OFFSET : LOSS_OFFSET + 4] = HS.to_bytes(4, "little")
    (tmp_path / "hs.bin").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="hierarchical softmax"):
        load_fasttext(tmp_path / "hs.bin", CheckpointForm.FASTTEXT, LoadOptions())


def test_fasttext_eval_set_of_raw_text_is_encoded_by_the_runtime(bin_file: Path, tmp_path: Path):
    model_labels = load_fasttext(bin_file, CheckpointForm.FASTTEXT, LoadOptions()).input_schema
    labels = np.zeros((len(TEXTS), len(model_labels["labels"])), dtype=np.int64)
    labels[:, 0] = 1
    eval_path = tmp_path / "eval.npz"
    np.savez(eval_path, text=np.asarray(TEXTS), labels=labels)
    result = convert(bin_file, out=tmp_path / "b", sweep=None, precision="fp32",
                     eval_data=eval_path, metric="micro_f1_probabilities")
    fp32 = result.manifest.variant("fp32")
    assert fp32.task_metric == result.manifest.measurement["original"]["task_metric"]
    assert any(p.check == -1 for p in fp32.parity), "parity measured over the eval texts"
