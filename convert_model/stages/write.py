"""Stage 7: drop the files of variants not kept, then write the bundle around the graphs."""

from __future__ import annotations

from dataclasses import replace

from convert_model.bundle.integrity import read_key
from convert_model.bundle.writer import prune, write_bundle
from convert_model.state import ConversionState


def run(state: ConversionState) -> ConversionState:
    """Write reports, model card and manifest into the staging folder."""
    records = prune(state.records, state.staging)
    manifest = write_bundle(
        state.staging,
        source=state.source or state.model.source,
        loaded=state.model,
        graph=state.exported,
        records=records,
        references=state.reference.references,
        measurement=state.measurement or {},
        opset=state.options.export.opset,
        sweep=state.sweep,
        generation=state.generation,
        key=read_key(state.options.sign) if state.options.sign else None,
    )
    return replace(state, records=records, manifest=manifest)
