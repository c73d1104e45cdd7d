"""SmoothQuant-style scaling: move activation outlier channels into the weights, before int8.

Rules, per group of MatMuls that read the same activation ``x`` (last axis ``K``) with
constant 2-D weights ``W`` (``K x N``); a fused ``Attention`` node (onnxruntime's, input 0
the activation, input 1 the packed query/key/value weight ``K x 3N``) counts as one, so the
attention input of a fused graph is smoothed too:
- Per input channel ``k``: ``s_k = a_k^alpha / w_k^(1-alpha)``, with ``a_k`` the largest
  ``|x[..., k]|`` seen on sample inputs (measured by the caller) and ``w_k`` the largest
  ``|W[k, :]|`` over the group's weights; ``alpha`` 0.5 splits the range evenly.
- ``x`` is divided by ``s`` (one ``Mul`` by ``1/s`` the group shares) and each ``W``'s row
  ``k`` multiplied by ``s_k``: ``(x / s) @ (s W) == x @ W``, so fp32 outputs are unchanged,
  while the activation int8 quantizes (one scale per tensor, dynamic) no longer has
  outlier channels to stretch its range over.
- Only groups whose activation channels differ enough (largest ``a_k`` over the median
  ``a_k`` at least ``min_spread``) are scaled: elsewhere the ``Mul`` costs without gain.
- A weight another node also reads is copied, not scaled in place.
- Ranges come from the caller, measured by ``benchmarks.activation_ranges``: the int8
  search measures them once; a preset built on its own, on its calibration inputs. A
  fused graph can hold activations the export does not (a fused embedding LayerNorm's
  output): the preset asks the caller to measure those on the fused graph
  (``smoothable`` lists what a graph needs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizers.types import Variant

_FLOOR = 1e-5


@dataclass(frozen=True, kw_only=True)
class SmoothConfig:
    """How much of the range moves into the weights, and where scaling is worth a ``Mul``."""

    alpha: float = 0.5
    min_spread: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not self.min_spread >= 1.0:
            raise ValueError(f"min_spread must be >= 1, got {self.min_spread}")


MeasureRanges = Callable[[Path, Sequence[str]], Mapping[str, np.ndarray]]
"""The caller's measurement of activation ranges: (graph, tensors) -> tensor -> per channel."""


def smoothable(path: Path) -> tuple[str, ...]:
    """The activations ``smooth`` could scale in ``path``: what their ranges must cover."""
    import onnx

    return _smoothable(onnx.load(str(path), load_external_data=False).graph)


def _smoothable(graph: Any) -> tuple[str, ...]:
    weights = {i.name for i in graph.initializer}
    return tuple(sorted({n.input[0] for n in graph.node
                         if _reads_weight(n) and n.input[1] in weights}))


def smooth(src: Path, dst: Path, config: SmoothConfig,
           ranges: Mapping[str, np.ndarray], name: str = "fp32-smoothed",
           measure: MeasureRanges | None = None) -> Variant:
    """Write the scaled copy of ``src`` to ``dst``; ``ranges``: activation tensor → ``a_k``.

    ``measure(src, tensors)``: the ranges of the activations ``ranges`` lacks (a fused
    graph's own tensors), when the caller can measure them.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    missing = [t for t in _smoothable(graph) if t not in ranges]
    if missing and measure is not None:
        ranges = {**ranges, **measure(src, missing)}
    weights = {i.name: i for i in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for i in node.input:
            readers[i] = readers.get(i, 0) + 1
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        if (_reads_weight(node) and node.input[1] in weights and node.input[0] in ranges
                and len(weights[node.input[1]].dims) == 2):
            groups.setdefault(node.input[0], []).append(node)
    scaled: dict[str, float] = {}
    for activation, nodes in groups.items():
        a = np.maximum(np.asarray(ranges[activation], np.float64), _FLOOR)
        spread = float(a.max() / max(float(np.median(a)), _FLOOR))
        arrays = [numpy_helper.to_array(weights[n.input[1]]).astype(np.float64) for n in nodes]
        if spread < config.min_spread or any(w.shape[0] != a.shape[0] for w in arrays):
            continue
        w = np.maximum(np.max([np.abs(x).max(axis=1) for x in arrays], axis=0), _FLOOR)
        s = np.maximum(a**config.alpha / w ** (1 - config.alpha), _FLOOR)
        inverse = f"{activation}/smooth_inverse_scale"
        graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inverse))
        smoothed = f"{activation}/smoothed"
        graph.node.append(onnx.helper.make_node("Mul", [activation, inverse], [smoothed],
                                                name=f"{activation}/Smooth"))
        for node, array in zip(nodes, arrays, strict=True):
            target = weights[node.input[1]]
            values = (array * s[:, None]).astype(np.float32)
            if readers.get(target.name, 0) > 1:
                copy = numpy_helper.from_array(values, f"{target.name}/smoothed/{node.name}")
                graph.initializer.append(copy)
                node.input[1] = copy.name
            else:
                target.CopyFrom(numpy_helper.from_array(values, target.name))
            node.input[0] = smoothed
        scaled[activation] = round(spread, 2)
    _topological(graph)
    onnx.save_model(model, str(dst))
    return Variant(name=name, path=dst, precision="fp32", device="cpu",
                   recipe=({"pass": "smooth", **dataclasses.asdict(config)},),
                   details={"smoothed_activations": scaled})


def _reads_weight(node: Any) -> bool:
    """A MatMul of an activation by a weight, or a fused Attention (activation, weight, ...)."""
    op, inputs = node.op_type, node.input
    return (op == "MatMul" and len(inputs) == 2) or (
        op == "Attention" and node.domain == "com.microsoft" and len(inputs) >= 2)


def _topological(graph: object) -> None:
    """Re-sort ``graph.node`` so each node follows the nodes whose outputs it reads."""
    nodes = list(graph.node)  # type: ignore[attr-defined]
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer}  # type: ignore[attr-defined]
    ready.add("")
    ordered, pending = [], nodes
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            ordered.extend(rest)  # inputs from outside (a subgraph's scope): keep their order
            break
        pending = rest
    del graph.node[:]  # type: ignore[attr-defined]
    graph.node.extend(ordered)  # type: ignore[attr-defined]
