"""SkipLayerNormalization written back as Add + LayerNormalization: same outputs, no fusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from converters.onnx_graph import runner
from optimizers.fuse import FuseConfig, fuse
from optimizers.split_layernorm import probe_graphs, split_skip_layernorm
from optimizers.types import op_histogram


def _feed(hidden: int, tokens: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {n: rng.standard_normal((1, tokens, hidden)).astype(np.float32) for n in ("x", "skip")}


def test_split_matches_the_fused_kernel(tmp_path: Path):
    fused, split = probe_graphs(16, 5)
    onnx.save(fused, str(tmp_path / "fused.onnx"))
    onnx.save(split, str(tmp_path / "split.onnx"))
    assert op_histogram(tmp_path / "split.onnx") == {"Add": 2, "LayerNormalization": 1}
    feed = _feed(16)
    np.testing.assert_allclose(runner(tmp_path / "split.onnx")(feed)["y"],
                               runner(tmp_path / "fused.onnx")(feed)["y"], atol=1e-5)


def test_split_keeps_the_sum_output_and_leaves_nodes_with_training_outputs(tmp_path: Path):
    fused, _ = probe_graphs(8, 3)
    node = fused.graph.node[0]
    node.output.extend(["", "", "sum"])
    fused.graph.output.append(helper.make_tensor_value_info("sum", TensorProto.FLOAT, None))
    training, _ = probe_graphs(8, 3)
    training.graph.node[0].output.extend(["mean"])
    assert split_skip_layernorm(training) == 0
    assert split_skip_layernorm(fused) == 1
    onnx.save(fused, str(tmp_path / "s.onnx"))
    feed = _feed(8, 3)
    out = runner(tmp_path / "s.onnx")(feed)
    np.testing.assert_allclose(out["sum"], feed["x"] + feed["skip"] + _bias(fused), rtol=1e-6)


def _bias(model: onnx.ModelProto) -> np.ndarray:
    return next(onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "bias")


def test_split_leaves_a_graph_below_opset_17():
    fused, _ = probe_graphs(8, 3)
    fused.opset_import[0].version = 16
    assert split_skip_layernorm(fused) == 0


def test_fuse_splits_skip_layernorm_only_when_asked(bert_onnx: Path, bert_feed, tmp_path: Path):
    kept = fuse(bert_onnx, tmp_path / "kept.onnx", FuseConfig(model_type="bert"))
    split = fuse(bert_onnx, tmp_path / "split.onnx",
                 FuseConfig(model_type="bert", split_skip_layernorm=True))
    assert op_histogram(kept.path).get("SkipLayerNormalization", 0) > 0
    assert "SkipLayerNormalization" not in op_histogram(split.path)
    assert split.details["skip_layernorm_split"] == op_histogram(kept.path)[
        "SkipLayerNormalization"]
    assert split.details["fusions"]["Attention"] == kept.details["fusions"]["Attention"]
    a, b = runner(kept.path)(bert_feed), runner(split.path)(bert_feed)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=1e-5)
