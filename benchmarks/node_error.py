"""Which nodes cost a quantized graph its accuracy: per-node error against the fp32 graph.

Both graphs keep the fp32 graph's tensor names at node boundaries (quantization wraps a
node but its output keeps its name), so each node's output can be read from both and
compared. With ``masks`` (one per feed, e.g. its attention mask), a tensor whose leading
axes are the mask's is compared on the unmasked positions only: padding is not the
model's output, and its values should not rank a node. A node's *own* error is its output
error less the worst error already present in its activation inputs: a node downstream of
a damaged one is not blamed for it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_EPS = 1e-12


@dataclass(frozen=True, kw_only=True)
class NodeError:
    """One node's error: at its output, inherited from its inputs, and its own share."""

    node: str
    output_error: float
    input_error: float

    @property
    def own_error(self) -> float:
        """The error this node adds."""
        return max(0.0, self.output_error - self.input_error)


def _expose(path: Path, tensors: Sequence[str], dst: Path) -> Path:
    import onnx

    model = onnx.load(str(path))
    present = {o.name for o in model.graph.output}
    produced = {out for node in model.graph.node for out in node.output}
    for name in tensors:
        if name not in present and name in produced:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    onnx.save_model(model, str(dst))
    return dst


def run_exposed(path: Path, tensors: Sequence[str], feeds: Sequence[Mapping[str, np.ndarray]],
                threads: int) -> dict[str, list[np.ndarray]]:
    """Run ``path`` on every feed with ``tensors`` made outputs; each one's values by feed."""
    from converters import onnx_graph

    with tempfile.TemporaryDirectory(prefix="convert-model-nodes-") as tmp:
        sess = onnx_graph.session(_expose(path, tensors, Path(tmp) / "exposed.onnx"), threads)
        names = [o.name for o in sess.get_outputs()]
        values: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for feed in feeds:
            for name, value in zip(names, sess.run(names, dict(feed)), strict=True):
                values[name].append(np.asarray(value, dtype=np.float64))
    return values


def _masked(value: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``value`` zeroed where ``mask`` is 0, when its leading axes are the mask's."""
    if mask is None or value.shape[: mask.ndim] != mask.shape:
        return value
    return value * mask.reshape(mask.shape + (1,) * (value.ndim - mask.ndim))


def relative_error(reference: list[np.ndarray], candidate: list[np.ndarray],
                   masks: Sequence[np.ndarray | None] | None = None) -> float:
    """||candidate - reference|| / ||reference|| over every feed (masked positions left out)."""
    weights = list(masks) if masks is not None else [None] * len(reference)
    num = sum(float(np.sum(_masked(c - r, m) ** 2))
              for r, c, m in zip(reference, candidate, weights, strict=True))
    den = sum(float(np.sum(_masked(r, m) ** 2)) for r, m in zip(reference, weights, strict=True))
    return float(np.sqrt(num / (den + _EPS)))


def node_errors(fp32: Path, quantized: Path, nodes: Mapping[str, tuple[str, Sequence[str]]],
                feeds: Sequence[Mapping[str, np.ndarray]], threads: int = 1,
                masks: Sequence[np.ndarray | None] | None = None) -> list[NodeError]:
    """Error of each node in ``nodes`` (name → (output tensor, activation input tensors)).

    Returns the nodes sorted by their own error, worst first.
    """
    tensors = sorted({t for out, ins in nodes.values() for t in (out, *ins)})
    reference = run_exposed(fp32, tensors, feeds, threads)
    candidate = run_exposed(quantized, tensors, feeds, threads)

    def error(tensor: str) -> float:
        if tensor not in reference or tensor not in candidate:
            return 0.0
        return relative_error(reference[tensor], candidate[tensor], masks)

    found = [NodeError(node=name, output_error=error(out),
                       input_error=max((error(t) for t in ins), default=0.0))
             for name, (out, ins) in nodes.items()]
    return sorted(found, key=lambda e: e.own_error, reverse=True)
