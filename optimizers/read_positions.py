"""Position-wise work done only at the position the outputs read: a ``[CLS]`` pooler's tail.

A sequence classifier reads one position of its last hidden state (``Gather(h, 0,
axis=1)``, the pooler's ``[CLS]``); the work between the last attention and that read
(the output projection, the residual adds, the LayerNorms, the feed-forward block) is done
for every other position for nothing. Rules:
- A ``Gather`` over axis 1 at a constant scalar index moves above the node producing its
  input when that node is position-wise (``POSITION_WISE``: it treats each position
  alone) and every reader of that node's output is such a ``Gather`` at the same index;
  the node then reads gathered inputs and writes what the ``Gather`` wrote.
- Of the node's inputs, weights (initializers: a bias, a MatMul's right-hand side, a
  LayerNorm's scale) are read as they are, and every other input is gathered. Each of
  those must have the node output's rank and its axis 1 (shapes from onnxruntime's
  symbolic shape inference): an input broadcast along the positions, or one whose shape
  is unknown, stops the move.
- A MatMul moves only when its right-hand side is a weight; a node with more than one
  output (a SkipLayerNormalization whose sum a later layer reads) does not move.
- It repeats until no ``Gather`` moves, so it stops at the last attention.
The outputs are the same computation; the positions nobody reads are no longer computed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from optimizers.types import rename_reads

POSITION_WISE = frozenset((
    "Add", "Sub", "Mul", "Div", "Relu", "Tanh", "Erf", "Sigmoid", "Gelu", "BiasGelu",
    "FastGelu", "LayerNormalization", "SkipLayerNormalization", "MatMul", "Identity",
))


def read_positions(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns how many nodes moved."""
    from onnx import helper

    graph = model.graph
    shapes = _shapes(model)
    if not shapes:
        return 0
    weights = {i.name for i in graph.initializer}
    scalars = {i.name for i in graph.initializer if len(i.dims) == 0}
    scalars |= {n.output[0] for n in graph.node
                if n.op_type == "Constant" and n.attribute and len(n.attribute[0].t.dims) == 0}
    outputs = {o.name for o in graph.output}
    moved = 0
    while True:
        readers: dict[str, list[Any]] = defaultdict(list)
        producer: dict[str, Any] = {}
        for node in graph.node:
            for name in node.input:
                readers[name].append(node)
            for name in node.output:
                producer[name] = node
        step = next(((g, producer[g.input[0]]) for g in graph.node
                     if _is_read(g, scalars) and g.input[0] in producer
                     and _movable(producer[g.input[0]], g, readers, weights, shapes,
                                  outputs, scalars)), None)
        if step is None:
            return moved
        gather, node = step
        index, gathered = gather.input[1], gather.output[0]
        for other in readers[gather.input[0]]:
            if other is not gather:
                rename_reads(graph, other.output[0], gathered)
            graph.node.remove(other)
        position = list(graph.node).index(node)
        for k, name in enumerate(node.input):
            if name and name not in weights:
                cut = f"{name}/read_positions/{index}"
                if cut not in producer:
                    graph.node.insert(position, helper.make_node("Gather", [name, index], [cut],
                                                                 name=cut, axis=1))
                    position += 1
                    producer[cut] = graph.node[position - 1]
                node.input[k] = cut
        node.output[0] = gathered
        moved += 1


def _shapes(model: Any) -> dict[str, list[Any]]:
    """Tensor name → dims (int or symbol), from onnxruntime's symbolic shape inference."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    from convert_model.core.quiet import quiet
    from optimizers.scratch import scratch_cwd

    try:
        with quiet(), scratch_cwd():
            inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # noqa: BLE001  shapes unknown: nothing is proven safe to move
        return {}
    found = {}
    for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        if info.type.tensor_type.HasField("shape"):
            found[info.name] = [d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
                                for d in dims]
    return found


def _is_read(node: Any, scalars: set[str]) -> bool:
    """A Gather over axis 1 at one constant position."""
    if node.op_type != "Gather" or node.domain not in ("", "ai.onnx"):
        return False
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    return axis == 1 and node.input[1] in scalars


def _movable(node: Any, gather: Any, readers: dict[str, list[Any]], weights: set[str],
             shapes: dict[str, list[Any]], outputs: set[str], scalars: set[str]) -> bool:
    """Whether ``gather`` may move above ``node`` (the rules in the module docstring)."""
    source = gather.input[0]
    if (node.op_type not in POSITION_WISE or [o for o in node.output if o] != [source]
            or source in outputs):
        return False
    if not all(_is_read(r, scalars) and r.input[1] == gather.input[1]
               and r.output[0] not in outputs or r is gather for r in readers[source]):
        return False
    if node.op_type == "MatMul" and (node.input[1] not in weights or node.input[0] in weights):
        return False
    if node.op_type in ("LayerNormalization", "SkipLayerNormalization") and next(
            (a.i for a in node.attribute if a.name == "axis"), -1) != -1:
        return False
    out = shapes.get(source)
    if not out or len(out) < 3 or out[1] is None:
        return False
    activations = [n for n in node.input if n and n not in weights]
    return bool(activations) and all(
        (shape := shapes.get(n)) is not None and len(shape) == len(out) and shape[1] == out[1]
        for n in activations)
