"""Stage 2b: cut trailing padding inside the export, where the outputs are measured not to need it.

Every variant is built from the export, so every variant inherits the cut; the fp32
parity stage that follows judges the cut export against the original like any export.
The manifest's ``export.padding`` says whether the graph was cut, and why not.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from convert_model.core.errors import first_line
from convert_model.core.names import BASELINE
from convert_model.state import ConversionState

PROBE_ROWS = 8  # one batch of eval rows (their lengths differ), and the first rows alone
SINGLE_ROWS = 2


def run(state: ConversionState) -> ConversionState:
    """The export, cut where a probe shows its outputs unchanged; the record either way."""
    record = _trim(state)
    if not record["trimmed"]:
        state.log(f"padding kept: {record['reason']}")
    return replace(state, graph=replace(state.exported, padding=record))


def _trim(state: ConversionState) -> dict[str, Any]:
    from benchmarks.padding import compare_trimmed, probe, sequence_axes
    from benchmarks.parity import failures
    from converters.onnx_graph import runner
    from optimizers.trim_padding import TrimConfig, sequence_inputs, trim_padding

    if not state.options.export.trim_padding:
        return {"trimmed": False, "reason": "--keep-padding"}
    if state.generative:
        return {"trimmed": False, "reason": "a generative model's graphs keep their padding"}
    path = state.exported.path
    found = sequence_inputs(path)
    if isinstance(found, str):
        return {"trimmed": False, "reason": found}
    batches = [state.eval_set.head(PROBE_ROWS)] if state.eval_set is not None else list(
        state.model.examples)
    if any(set(found.inputs) - set(b) or b[found.mask].ndim != 2 or b[found.mask].shape[1] < 2
           for b in batches):
        return {"trimmed": False, "reason": f"the check inputs lack {', '.join(found.inputs)} "
                "of two or more columns to probe"}
    feeds = [probe(b, found.mask, found.inputs) for b in batches]
    feeds += [{k: v[row:row + 1] for k, v in feeds[0].items()}
              for row in range(min(SINGLE_ROWS, len(feeds[0][found.mask])))]
    untrimmed = runner(path, state.threads)
    try:
        axes = sequence_axes(untrimmed, feeds[0], found.inputs)
    except Exception as e:  # noqa: BLE001  a graph that cannot run shorter keeps its padding
        return {"trimmed": False, "reason": "the export does not run on inputs one column "
                f"shorter ({first_line(e)})"}
    elsewhere = {name: a for name, a in axes.items() if a not in ((), (1,))}
    if elsewhere:
        name, a = next(iter(elsewhere.items()))
        return {"trimmed": False, "reason": f"output {name} follows the sequence length on "
                f"axes {list(a)}, not on axis 1 alone"}
    config = TrimConfig(mask=found.mask, inputs=found.inputs,
                        padded_outputs=tuple(n for n, a in axes.items() if a == (1,)))
    trimmed_path = path.with_name(f".{path.stem}.trimmed.onnx")
    trim_padding(path, trimmed_path, config)
    try:
        try:
            records = compare_trimmed(untrimmed, runner(trimmed_path, state.threads), feeds)
        except Exception as e:  # noqa: BLE001  e.g. an input on the same axis under another name
            return {"trimmed": False, "reason": f"the cut graph does not run ({first_line(e)})"}
        breaches = failures(records, state.options.budgets[BASELINE])
        if breaches:
            more = f"; {len(breaches) - 1} more" if len(breaches) > 1 else ""
            return {"trimmed": False, "reason": "the outputs change when the padded columns are "
                    f"cut ({breaches[0]}{more})"}
        os.replace(trimmed_path, path)
    finally:
        trimmed_path.unlink(missing_ok=True)
    worst = max(r.max_abs_diff for r in records)
    state.log(f"padding: {', '.join(config.inputs)} cut after the last real column inside the "
              f"graph; outputs unchanged on {len(feeds)} padded probes (max abs diff {worst:.3g})")
    return {"trimmed": True, **config.to_json(),
            "probe": {"inputs": len(feeds), "max_abs_diff": worst}}
