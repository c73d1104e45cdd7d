"""Trailing padding trimmed inside the graph: a padded batch runs at its longest real length.

Clients pad to a fixed length (``padding="max_length"``), and a batch is as long as its
longest row; the encoder then spends most of its time on positions the attention mask
excludes. Rules of the rewrite:
- The graph's sequence inputs (every 2-D input whose axis 1 is the mask's dynamic axis) are
  cut to ``L``, one past the last column where any row's mask is set (at least 1). A
  column inside the real tokens is never cut, whatever holes the mask has; leading
  padding (left-padded inputs) is kept.
- An output with that axis (``last_hidden_state``, token logits) is padded back to the
  input's length with zeros along axis 1: its shape is as before, its real positions as
  before, its padded positions zero (nothing reads those; parity compares real positions).
- Only an integer or boolean mask is read (a float mask may be additive: 0 / -inf); any
  nonzero value marks a real token, as parity reads a mask.
Whether the outputs really do not depend on the cut columns is measured by the caller on
padded inputs (``benchmarks.padding``), never assumed: a model that pools over padding
changes under the cut, and is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizers.types import rename_reads

MASK_NAMES = ("attention_mask", "input_mask")
_PREFIX = "padding_trim/"
# TensorProto element types: uint8, int8, uint16, int16, int32, int64, bool, uint32, uint64.
_INT_TYPES = frozenset((2, 3, 4, 5, 6, 7, 9, 12, 13))


@dataclass(frozen=True, kw_only=True)
class SequenceInputs:
    """The mask, the inputs cut along axis 1 with it, and the name of that axis."""

    mask: str
    inputs: tuple[str, ...]
    axis: str


@dataclass(frozen=True, kw_only=True)
class TrimConfig:
    """What to cut (``inputs`` along axis 1, after ``mask``) and which outputs to pad back."""

    mask: str
    inputs: tuple[str, ...]
    padded_outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mask not in self.inputs:
            raise ValueError(f"the mask {self.mask!r} must be one of the cut inputs "
                             f"{list(self.inputs)}")

    def to_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {"mask": self.mask, "inputs": list(self.inputs),
                "padded_outputs": list(self.padded_outputs)}


def sequence_inputs(path: Path) -> SequenceInputs | str:
    """The graph's padded sequence inputs, or why it has none the rewrite can cut.

    The mask is the first input named as in ``MASK_NAMES``; the others share its axis 1
    by name (a dynamic axis of the export).
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    if any(n.name.startswith(_PREFIX) for n in graph.node):
        return "the graph already cuts its padding (a bundle's model.onnx)"
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    mask = next((n for n in MASK_NAMES if n in inputs), None)
    if mask is None:
        return f"no attention-mask input ({' or '.join(MASK_NAMES)})"
    dims = inputs[mask].shape.dim
    if len(dims) != 2:
        return f"{mask} has {len(dims)} axes, not [batch, sequence]"
    if inputs[mask].elem_type not in _INT_TYPES:
        return f"{mask} is not an integer or boolean mask (a float mask may be additive)"
    axis = dims[1].dim_param
    if not axis:
        fixed = dims[1].dim_value
        return f"{mask}'s sequence axis is fixed ({fixed})" if fixed else (
            f"{mask}'s sequence axis has no name to match the other inputs by")
    cut = tuple(name for name, t in inputs.items()
                if len(t.shape.dim) == 2 and t.shape.dim[1].dim_param == axis)
    return SequenceInputs(mask=mask, inputs=cut, axis=axis)


def trim_padding(src: Path, dst: Path, config: TrimConfig) -> None:
    """Write ``src`` with the cut in front and the padding back behind to ``dst``.

    External weights stay where they are: ``dst`` goes beside ``src``, in its folder.
    """
    import onnx

    if dst.parent.resolve() != src.parent.resolve():
        raise ValueError(f"{dst} must be in {src.parent}: external weights are read by path")
    model = onnx.load(str(src), load_external_data=False)
    graph = model.graph
    names = {i.name for i in graph.input}
    missing = sorted(set(config.inputs) - names)
    if missing:
        raise ValueError(f"{src.name} has no input(s) {missing}")
    length, nodes, weights = _cut_length(config.mask)
    for name in config.inputs:
        rename_reads(graph, name, _PREFIX + name)
        nodes.append(_node("Slice", [name, _PREFIX + "zero", length, _PREFIX + "one"],
                           _PREFIX + name))
    tail = []
    ranks = {o.name: len(o.type.tensor_type.shape.dim) for o in graph.output}
    for name in config.padded_outputs:
        raw = _PREFIX + "cut/" + name
        _rename_produced(graph, name, raw)
        pads = _PREFIX + "pads/" + name
        rank = ranks[name]
        weights[pads + "/before"] = np.zeros(rank + 1, np.int64)  # all begins, axis 0's end
        weights[pads + "/after"] = np.zeros(rank - 2, np.int64)
        tail += [_node("Concat", [pads + "/before", _PREFIX + "missing", pads + "/after"],
                       pads, axis=0),
                 _node("Pad", [raw, pads], name)]
    if config.padded_outputs:
        weights[_PREFIX + "two"] = np.array([2], np.int64)
        nodes += [_node("Shape", [config.mask], _PREFIX + "mask_shape"),
                  _node("Slice", [_PREFIX + "mask_shape", _PREFIX + "one", _PREFIX + "two",
                                  _PREFIX + "zero"], _PREFIX + "full"),
                  _node("Sub", [_PREFIX + "full", length], _PREFIX + "missing")]
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *body, *tail])
    graph.initializer.extend(onnx.numpy_helper.from_array(v, k) for k, v in weights.items())
    onnx.save(model, str(dst))


def _cut_length(mask: str) -> tuple[str, list[Any], dict[str, np.ndarray]]:
    """Nodes computing ``[L]``: one past the last column any row's mask sets, at least 1."""
    p = _PREFIX
    weights = {p + "zero": np.array([0], np.int64), p + "one": np.array([1], np.int64),
               p + "one_scalar": np.array(1, np.int64)}
    nodes = [
        # Nonzero is real, as parity reads a mask: any value, not only 1, counts once.
        _node("Cast", [mask], p + "mask_set", to=9),  # BOOL
        _node("Cast", [p + "mask_set"], p + "mask", to=7),  # INT64
        _node("Shape", [mask], p + "shape"),
        _node("Gather", [p + "shape", p + "one_scalar"], p + "columns", axis=0),
        _node("Add", [p + "columns", p + "one_scalar"], p + "columns_end"),
        # Column c holds c+1 where a row is real, 0 where every row is padding.
        _node("Range", [p + "one_scalar", p + "columns_end", p + "one_scalar"], p + "position"),
        _node("Mul", [p + "mask", p + "position"], p + "real"),
        _node("ReduceMax", [p + "real"], p + "last", keepdims=0),
        _node("Max", [p + "last", p + "one_scalar"], p + "length_scalar"),
        _node("Reshape", [p + "length_scalar", p + "one"], p + "length"),
    ]
    return p + "length", nodes, weights


def _node(op: str, inputs: Sequence[str], output: str, **attrs: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, list(inputs), [output], name=output, **attrs)


def _rename_produced(graph: Any, old: str, new: str) -> None:
    """The producer of graph output ``old`` writes ``new``, and every reader reads ``new``."""
    rename_reads(graph, old, new)
    producers = [n for n in graph.node if old in n.output]
    if not producers:
        raise ValueError(f"output {old!r} is no node's output (an input or a constant)")
    for node in producers:
        node.output[list(node.output).index(old)] = new
