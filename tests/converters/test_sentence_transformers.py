"""sentence-transformers folders: the pooling in the graph, judged on the sentence embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert_model import convert
from convert_model.core.errors import CheckpointError
from converters.export import ExportConfig, export
from converters.forms import detect_form
from converters.onnx_graph import run, session
from converters.registry import LoadOptions, loader_for
from converters.types import CheckpointForm
from tests.fixtures.models import _save_bert_tokenizer

NORMALIZE = "sentence_transformers.models.Normalize"


def st_folder(root: Path, modes: tuple[str, ...], *, normalize: bool = False,
              subfolder: str = "") -> Path:
    """A sentence-transformers folder around a tiny random BERT, written as the library does."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    transformer = root / subfolder
    transformer.mkdir(parents=True, exist_ok=True)
    vocab = _save_bert_tokenizer(transformer)
    BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64,
                         max_position_embeddings=128)).save_pretrained(transformer)
    modules = [
        {"idx": 0, "name": "0", "path": subfolder,
         "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": NORMALIZE})
        (root / "2_Normalize").mkdir()
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "include_prompt": True,
         **{f"pooling_mode_{m}": m in modes for m in
            ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens",
             "weightedmean_tokens", "lasttoken")}}))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    return root


def _expected(tokens: np.ndarray, mask: np.ndarray, modes: tuple[str, ...],
              normalize: bool) -> np.ndarray:
    """Pooling written out in numpy from sentence-transformers' Pooling.forward."""
    m = mask[..., None].astype(np.float64)
    t = tokens.astype(np.float64)
    parts = []
    for mode in ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens"):
        if mode not in modes:
            continue
        if mode == "cls_token":
            parts.append(t[:, 0])
        elif mode == "max_tokens":
            parts.append(np.where(m > 0, t, -1e9).max(axis=1))
        else:
            count = np.maximum(m.sum(axis=1), 1e-9)
            parts.append((t * m).sum(axis=1) / (count if mode == "mean_tokens" else np.sqrt(count)))
    out = np.concatenate(parts, axis=1)
    if normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


@pytest.mark.parametrize(
    ("modes", "normalize", "subfolder"),
    [(("cls_token",), False, "0_Transformer"), (("max_tokens",), True, ""),
     (("mean_sqrt_len_tokens",), False, ""), (("cls_token", "mean_tokens"), True, "")],
)
def test_sentence_transformers_graph_pools_like_the_library(tmp_path: Path, modes, normalize,
                                                            subfolder):
    folder = st_folder(tmp_path / "st", modes, normalize=normalize, subfolder=subfolder)
    assert detect_form(folder) is CheckpointForm.SENTENCE_TRANSFORMERS
    loaded = loader_for(CheckpointForm.SENTENCE_TRANSFORMERS)(
        folder, CheckpointForm.SENTENCE_TRANSFORMERS, LoadOptions())
    (tmp_path / "g").mkdir()
    graph = export(loaded, tmp_path / "g", ExportConfig())
    assert graph.strategy == "dynamo"  # optimum's exporter would drop the pooling
    assert [o.name for o in graph.outputs] == ["last_hidden_state", "sentence_embedding"]
    sess = session(graph.path)
    for feed in loaded.examples:
        got = run(sess, feed)
        expected = _expected(got["last_hidden_state"], feed["attention_mask"], modes, normalize)
        assert np.abs(got["sentence_embedding"] - expected).max() < 1e-5
        original = loaded.run(feed)["sentence_embedding"]
        assert np.abs(got["sentence_embedding"] - original).max() < 1e-4
    assert loaded.input_schema["pooling"] == list(modes)


def test_sentence_transformers_converts_with_parity_on_the_sentence_embedding(tmp_path: Path):
    folder = st_folder(tmp_path / "st", ("mean_tokens",), normalize=True)
    result = convert(folder, out=tmp_path / "b", sweep=None)
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["source"]["form"] == "sentence-transformers"
    assert manifest["input_schema"]["kind"] == "sentence-transformers"
    for variant in manifest["variants"]:
        if variant["status"] == "pass":
            cosines = [p["min_cosine"] for p in variant["parity"]
                       if p["name"] == "sentence_embedding"]
            assert cosines and min(cosines) >= variant["budget"]["min_cosine"]
    files = set(manifest["files"])
    assert {"modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
            "config.json", "vocab.txt"} <= files


def test_sentence_transformers_refuses_dense_modules_and_weighted_pooling(tmp_path: Path):
    folder = st_folder(tmp_path / "st", ("weightedmean_tokens",))
    with pytest.raises(CheckpointError, match="weightedmean_tokens is not supported"):
        loader_for(CheckpointForm.SENTENCE_TRANSFORMERS)(
            folder, CheckpointForm.SENTENCE_TRANSFORMERS, LoadOptions())
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense",
                    "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(CheckpointError, match="Dense' is not supported"):
        loader_for(CheckpointForm.SENTENCE_TRANSFORMERS)(
            folder, CheckpointForm.SENTENCE_TRANSFORMERS, LoadOptions())
