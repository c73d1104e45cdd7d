"""Generation export: the split optimum-onnx writes, and int8 reaching into the merged decoder."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from convert_model.core.errors import ExportError
from converters.export_generation import (
    DECODER,
    DECODER_ONLY,
    ENCODER,
    ENCODER_DECODER,
    export_generation,
    is_generative,
)
from optimizers.quantize_dynamic import DynamicQuantConfig, quantize_dynamic
from optimizers.types import op_histogram

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_mbart():
    torch.manual_seed(0)
    config = transformers.MBartConfig(
        vocab_size=96, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=64,
    )
    return transformers.MBartForConditionalGeneration(config).eval()


def test_export_generation_writes_encoder_and_merged_decoder(tmp_path: Path, tiny_mbart):
    graphs = export_generation(tiny_mbart, tmp_path, task="text2text-generation")
    assert graphs.kind == ENCODER_DECODER and graphs.merged
    assert graphs.files == {ENCODER: "encoder_model.onnx", DECODER: "decoder_model_merged.onnx"}
    # The unmerged pair is inside the merged graph; shipping it too would double the bundle.
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == sorted(graphs.files.values())
    assert (tmp_path / "generation_config.json").is_file()
    decoder = onnx.load(str(graphs.path(DECODER)))
    inputs = [i.name for i in decoder.graph.input]
    assert "use_cache_branch" in inputs
    assert "past_key_values.0.decoder.key" in inputs and "past_key_values.0.encoder.key" in inputs
    assert graphs.to_json()["kind"] == ENCODER_DECODER


def test_export_generation_keeps_the_pair_when_asked(tmp_path: Path, tiny_mbart):
    graphs = export_generation(tiny_mbart, tmp_path, task="text2text-generation",
                               keep_unmerged=True)
    assert graphs.unmerged == {"decoder_first": "decoder_model.onnx",
                               "decoder_with_past": "decoder_with_past_model.onnx"}
    assert all((tmp_path / name).is_file() for name in graphs.unmerged.values())
    assert "unmerged" not in graphs.to_json()


def test_export_generation_decoder_only_takes_past(tmp_path: Path):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=96, n_positions=64)
    ).eval()
    graphs = export_generation(model, tmp_path, task="text-generation")
    assert graphs.kind == DECODER_ONLY and graphs.files == {DECODER: "model.onnx"}
    outputs = [o.name for o in onnx.load(str(graphs.path(DECODER))).graph.output]
    assert outputs[:3] == ["logits", "present.0.key", "present.0.value"]


def test_export_generation_refuses_a_task_that_does_not_generate(tmp_path: Path, tiny_mbart):
    assert not is_generative("text-classification")
    with pytest.raises(ExportError, match="does not generate"):
        export_generation(tiny_mbart, tmp_path, task="text-classification")


def test_quantize_dynamic_reaches_the_merged_decoders_branches(tmp_path: Path, tiny_mbart):
    graphs = export_generation(tiny_mbart, tmp_path / "fp32", task="text2text-generation")
    variant = quantize_dynamic(graphs.path(DECODER), tmp_path / "int8.onnx", DynamicQuantConfig())
    main_graph_ops = {n.op_type for n in onnx.load(str(variant.path)).graph.node}
    assert "MatMulInteger" not in main_graph_ops  # every weight MatMul is inside the If
    ops = op_histogram(variant.path)
    assert ops["If"] == 1
    # Each branch (first step, cached step) has its own copy of every projection.
    assert variant.details["quantized_nodes"] == ops["MatMulInteger"] >= 2 * 6


def test_export_generation_leaves_the_models_generate_working(tmp_path: Path):
    # optimum's patcher sets use_cache on every submodule's config and keeps it; T5's
    # encoder stack then refuses to generate. The export puts the settings back.
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(transformers.T5Config(
        num_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, vocab_size=96,
        decoder_start_token_id=0,
    )).eval()
    before = {id(m): m.config.use_cache for m in model.modules() if hasattr(m, "config")}
    export_generation(model, tmp_path, task="text2text-generation")
    after = {id(m): m.config.use_cache for m in model.modules() if hasattr(m, "config")}
    assert after == before
    assert model.generate(torch.tensor([[5, 6, 7, 1]]), max_new_tokens=3).shape == (1, 4)
