"""Position-wise work moved behind the read of one position: same outputs, less work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.onnx_graph import runner
from optimizers.fuse import FuseConfig, fuse
from optimizers.read_positions import read_positions

RNG = np.random.default_rng(0)


def _tail(extra_output: bool = False, broadcast: bool = False) -> onnx.ModelProto:
    """x [batch, seq, 4] -> MatMul -> Add(bias) -> Add(residual r) -> Relu -> Gather(axis 1, 0)."""
    residual = ["batch", 1, 4] if broadcast else ["batch", "seq", 4]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["hb"]),
        helper.make_node("Add", ["hb", "r"], ["hr"]),
        helper.make_node("Relu", ["hr"], ["act"]),
        helper.make_node("Gather", ["act", "zero"], ["cls"], axis=1),
    ]
    outputs = [helper.make_tensor_value_info("cls", TensorProto.FLOAT, ["batch", 4])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info("act", TensorProto.FLOAT,
                                                     ["batch", "seq", 4]))
    graph = helper.make_graph(
        nodes, "tail",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 4]),
         helper.make_tensor_value_info("r", TensorProto.FLOAT, residual)],
        outputs,
        [numpy_helper.from_array(RNG.standard_normal((4, 4)).astype(np.float32), "w"),
         numpy_helper.from_array(RNG.standard_normal(4).astype(np.float32), "b"),
         numpy_helper.from_array(np.array(0, np.int64), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def _run(model: onnx.ModelProto, path: Path, feed: dict) -> dict:
    onnx.save(model, str(path))
    return runner(path)(feed)


def test_read_positions_moves_the_read_to_the_top_of_the_position_wise_chain(tmp_path: Path):
    model = _tail()
    feed = {"x": RNG.standard_normal((2, 5, 4)).astype(np.float32),
            "r": RNG.standard_normal((2, 5, 4)).astype(np.float32)}
    before = _run(model, tmp_path / "before.onnx", feed)
    assert read_positions(model) == 4
    gathers = [n.input[0] for n in model.graph.node if n.op_type == "Gather"]
    assert gathers == ["x", "r"]  # the inputs are read at position 0, then the chain runs
    assert [n.op_type for n in model.graph.node if n.op_type != "Gather"] == [
        "MatMul", "Add", "Add", "Relu"]
    after = _run(model, tmp_path / "after.onnx", feed)
    np.testing.assert_allclose(after["cls"], before["cls"], rtol=1e-6)


def test_read_positions_leaves_a_chain_another_output_reads():
    model = _tail(extra_output=True)
    assert read_positions(model) == 0


def test_read_positions_stops_at_an_input_broadcast_along_the_positions(tmp_path: Path):
    model = _tail(broadcast=True)
    feed = {"x": RNG.standard_normal((2, 5, 4)).astype(np.float32),
            "r": RNG.standard_normal((2, 1, 4)).astype(np.float32)}
    before = _run(model, tmp_path / "before.onnx", feed)
    assert read_positions(model) == 1  # the Relu; the residual Add reads r broadcast
    np.testing.assert_allclose(_run(model, tmp_path / "after.onnx", feed)["cls"], before["cls"],
                               rtol=1e-6)


def test_fuse_computes_the_pooler_tail_at_cls_only(bert_onnx: Path, bert_feed, tmp_path: Path):
    fused = fuse(bert_onnx, tmp_path / "f.onnx", FuseConfig(model_type="bert"))
    assert fused.details["read_positions_only"] > 0
    assert fused.details["fusions"]["Attention"] == 2  # the last layer's attention still fused
    a, b = runner(bert_onnx)(bert_feed), runner(fused.path)(bert_feed)
    np.testing.assert_allclose(b["logits"], a["logits"], atol=1e-5)
