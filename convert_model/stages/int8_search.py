"""The int8 recovery search: when the first int8 variant misses its budget, keep nodes in fp32.

Ranks that variant's quantized nodes by the error each adds (``benchmarks.node_error``),
then runs ``optimizers.exclusion.search``; the result joins the candidates as
``<preset>-mixed`` with every step recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmarks.latency import SEARCH_LATENCY, measure_interleaved
from convert_model.bundle.manifest import VariantRecord
from convert_model.core.names import BASELINE
from convert_model.stages.preparation import calibration_batches, fuse_config_for
from convert_model.stages.records import measure_parity
from convert_model.state import ConversionState
from converters.onnx_graph import runner
from optimizers.types import Variant


def run(state: ConversionState) -> ConversionState:
    """The state with ``<preset>-mixed`` among its records when a search ran."""
    return replace(state, records=tuple(recover_int8(state)))


def recover_int8(state: ConversionState) -> list[VariantRecord]:
    """The records, with ``<preset>-mixed`` added when a search ran."""
    from benchmarks.node_error import node_errors
    from optimizers.exclusion import Judgement, quantizable_nodes, search
    from optimizers.fuse import fuse
    from optimizers.presets import build, get_preset
    from optimizers.quantize_static import split_rows
    from optimizers.select import clearly_faster

    records = list(state.records)
    target = next((r for r in records if r.precision == "int8" and r.kept and not r.passed), None)
    if target is None:
        return records
    loaded, options, original, folder = state.model, state.options, state.reference, state.staging
    src, threads, log = state.exported.path, state.threads, state.log
    preset = get_preset(target.name)
    fuse_config = fuse_config_for(loaded)
    calibration = calibration_batches(options, original, loaded.input_names)
    reference_graph = src
    if preset.fuse:
        reference_graph = folder / ".exclusion-reference.fused.onnx"
        fuse(src, reference_graph, fuse_config)
    op_types = preset.dynamic.op_types if preset.dynamic else ("Conv", "MatMul", "Gemm")
    nodes = quantizable_nodes(reference_graph, op_types)
    feeds = split_rows(calibration, 16)
    errors = node_errors(reference_graph, folder / target.file, nodes, feeds, threads)
    ranked = [e.node for e in errors if e.own_error > 0]
    log(f"{target.name} misses its budget; ranking {len(nodes)} quantized nodes, worst: "
        + ", ".join(f"{e.node} ({e.own_error:.3f})" for e in errors[:3]))
    fp32_run = runner(src, threads)
    feed = original.latency_feed()
    name = f"{target.name}-mixed"
    last: dict[str, Any] = {}

    def rebuild(excluded: tuple[str, ...]) -> Variant:
        return build(preset, src, folder, fuse_config, calibration, nodes_to_exclude=excluded,
                     name=name)

    def judge(variant: Variant) -> Judgement:
        record = measure_parity(variant, folder, original, target.budget, threads,
                                options.eval.batch_size)
        last["record"] = record
        run = runner(variant.path, threads)
        timing = measure_interleaved({BASELINE: lambda: fp32_run(feed), name: lambda: run(feed)},
                                     SEARCH_LATENCY, reference=BASELINE)
        ratio = timing[name].ratio
        faster = ratio is not None and clearly_faster(ratio.high)
        detail = (f"time / fp32 {ratio.ratio:.3f} [{ratio.low:.3f}, {ratio.high:.3f}] over "
                  f"{ratio.rounds} paired rounds" if ratio is not None else "not timed")
        log(f"{name}: {len(variant.details.get('excluded_nodes', []))} nodes kept in fp32, "
            f"{'within' if record.passed else 'outside'} budget, {detail}")
        return Judgement(failures=record.failures, faster_than_fp32=faster, detail=detail)

    try:
        result = search(ranked, rebuild, judge)
    finally:
        if reference_graph != src:
            reference_graph.unlink(missing_ok=True)
    if "record" not in last:
        return records
    record = last["record"]
    details = dict(record.details)
    details["exclusion_search"] = {
        "searched_because": f"{target.name} missed its budget: {target.failures[0]}",
        "ranking": [{"node": e.node, "own_error": round(e.own_error, 6),
                     "output_error": round(e.output_error, 6)} for e in errors[:20]],
        "steps": [s.to_json() for s in result.steps],
        "stopped": result.stopped,
        "excluded": list(result.excluded),
    }
    log(f"{name}: search stopped ({result.stopped}) with {len(result.excluded)} nodes in fp32")
    return [*records, replace(record, details=details)]
