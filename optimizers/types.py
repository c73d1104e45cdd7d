"""What the optimizer passes hand back: an ONNX file and how it was made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert_model.core.names import VARIANT_DEVICES, VARIANT_PRECISIONS


@dataclass(frozen=True, kw_only=True)
class Variant:
    """An optimised ONNX file.

    Attributes:
        name: variant name, used in file names and reports (``fp32-fused``, ``int8-dynamic``).
        path: the ONNX file.
        precision: the arithmetic its heavy ops run in: fp32, int8 or fp16.
        device: the device it is built for.
        recipe: the configs of every pass that produced it (provenance).
        details: what the passes did: fusions that fired, nodes quantized and excluded.
    """

    name: str
    path: Path
    precision: str
    device: str
    recipe: tuple[Mapping[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precision not in VARIANT_PRECISIONS:
            raise ValueError(
                f"precision must be one of {VARIANT_PRECISIONS}, got {self.precision!r}"
            )
        if self.device not in VARIANT_DEVICES:
            raise ValueError(f"device must be one of {VARIANT_DEVICES}, got {self.device!r}")


def op_histogram(path: Path) -> dict[str, int]:
    """How many nodes of each op type the graph has, subgraphs (If/Loop bodies) included."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: dict[str, int] = {}
    graphs = [model.graph]
    while graphs:
        for node in graphs.pop().node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for a in node.attribute:
                graphs.extend([a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs)
    return dict(sorted(counts.items()))


def rename_reads(graph: Any, old: str, new: str) -> None:
    """Every node reading ``old`` reads ``new``, in the bodies of If and Loop nodes too."""
    import onnx

    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        for a in node.attribute:
            for body in [a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs:
                rename_reads(body, old, new)
