"""Stage 2: export the loaded model to the fp32 ONNX graph, through the strategy chain."""

from __future__ import annotations

from dataclasses import replace

from convert_model.state import ConversionState


def run(state: ConversionState) -> ConversionState:
    """Export into the staging folder; every attempt is recorded on the graph."""
    from converters.export import export

    graph = export(state.model, state.staging, state.options.export, log=state.log)
    state.log(f"exported with {graph.strategy}, opset {graph.opset}")
    return replace(state, graph=graph)
