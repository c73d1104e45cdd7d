"""The nodes a quantizer would quantize: the candidates the int8 search ranks and protects.

``optimizers.int8_search`` decides which of them to keep fp32 (or per-channel); this module
only finds them: nodes of the given op types with a constant weight input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def quantizable_nodes(
    path: Path, op_types: Sequence[str]
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Nodes of ``op_types`` with a constant weight: name → (output, activation inputs)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    constants = {i.name for i in model.graph.initializer}
    constants |= {out for n in model.graph.node if n.op_type == "Constant" for out in n.output}
    found = {}
    for node in model.graph.node:
        if node.op_type in op_types and any(i in constants for i in node.input):
            activations = tuple(i for i in node.input if i and i not in constants)
            found[node.name] = (node.output[0], activations)
    return found
