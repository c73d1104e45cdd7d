"""onnxruntime's fused ``SkipLayerNormalization`` written back as Add + LayerNormalization.

The transformer optimizer fuses each residual ``Add`` (and the bias ``Add`` before it) with
the ``LayerNormalization`` after it. On some builds and CPUs that contrib kernel runs
several times slower than the standard ``LayerNormalization`` kernel plus the adds
(measured, not assumed: ``convert_model.stages.preparation.layernorm_choice``). Rules:
- ``SkipLayerNormalization(x, skip, gamma[, beta[, bias]])`` becomes
  ``y = LayerNormalization(x + skip [+ bias], gamma[, beta])`` over the last axis, with the
  node's epsilon.
- The bias is added last, as a constant: onnxruntime's load-time fusion looks for an
  ``Add`` of two activations right before the ``LayerNormalization`` and does not fuse it
  back.
- The optional sum output (index 3, the residual a later layer reads) is the sum; the
  mean and inverse-deviation outputs (1 and 2) are training outputs: a node that has them
  is left as it is.
- Only the default-domain ``LayerNormalization`` (opset 17 and up) is written; a graph on
  an older opset is left as it is.
"""

from __future__ import annotations

from typing import Any

MIN_OPSET = 17


def split_skip_layernorm(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns the nodes rewritten."""
    from onnx import helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        return 0
    graph = model.graph
    nodes: list[Any] = []
    split = 0
    for node in graph.node:
        outputs = list(node.output) + [""] * (4 - len(node.output))
        if node.op_type != "SkipLayerNormalization" or outputs[1] or outputs[2]:
            nodes.append(node)
            continue
        inputs = list(node.input) + [""] * (5 - len(node.input))
        x, skip, gamma, beta, bias = inputs[:5]
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        total = f"{node.name}/residual"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=total))
        if bias:
            biased = f"{node.name}/bias"
            nodes.append(helper.make_node("Add", [total, bias], [biased], name=biased))
            total = biased
        if outputs[3]:
            nodes.append(helper.make_node("Identity", [total], [outputs[3]],
                                          name=f"{node.name}/sum"))
        nodes.append(helper.make_node("LayerNormalization",
                                      [total, gamma, *([beta] if beta else [])], [outputs[0]],
                                      name=f"{node.name}/layernorm", axis=-1, epsilon=epsilon))
        split += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return split


def probe_graphs(hidden: int, tokens: int) -> tuple[Any, Any]:
    """One ``SkipLayerNormalization`` over ``[1, tokens, hidden]`` (with bias), and its split.

    For timing the two kernels against each other on this machine; inputs ``x``, ``skip``.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), name)
               for name in ("gamma", "beta", "bias")]
    shape = [1, tokens, hidden]
    node = helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"],
                            ["y"], name="skip_layernorm", domain="com.microsoft", epsilon=1e-12)
    graph = helper.make_graph(
        [node], "skip_layernorm",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "skip")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], weights)
    opsets = [helper.make_opsetid("", MIN_OPSET), helper.make_opsetid("com.microsoft", 1)]
    fused = helper.make_model(graph, opset_imports=opsets)
    fused.ir_version = 9
    split = type(fused)()
    split.CopyFrom(fused)
    split_skip_layernorm(split)
    return fused, split
