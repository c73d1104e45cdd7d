"""Stage 5b: time the original and every runnable variant in one interleaved run, and choose.

Timing goes on until every variant's paired ratio to the original is known to the stated
precision (``benchmarks.latency``); ``optimizers.select.choose`` decides on those ratios.
A broken fp32 graph is not timed: nothing is chosen, and the measurement says why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from benchmarks.evaluate import EvalSet
from benchmarks.original import Original
from convert_model.bundle.manifest import VariantRecord
from convert_model.core.names import BASELINE
from convert_model.options import ConvertOptions
from convert_model.state import ConversionState
from converters.onnx_graph import runner


def run(state: ConversionState) -> ConversionState:
    """Every record gets its latency, speed-up and the reason it was or was not chosen."""
    if state.broken is not None:
        return _untimed(state, f"the fp32 graph is broken ({state.broken})")
    from benchmarks.latency import measure_interleaved, ratio_text, speedup_of, versus
    from optimizers.select import choose, measured_from

    options, original, loaded = state.options, state.reference, state.model
    feed = original.latency_feed()
    runners: dict[str, Callable[[], object]] = {"original": lambda: loaded.run(feed)}
    for record in state.records:
        if record.device == options.device and record.kept and _unchanged(record,
                                                                              options) is None:
            runners[record.name] = functools.partial(
                runner(state.staging / record.file, state.threads), feed)
    batch = len(next(iter(feed.values())))
    with state.progress.bar(options.latency.round_cap,
                            "latency rounds (at most; until the ratios settle)") as bar:
        timings = measure_interleaved(runners, options.latency, batch_size=batch,
                                      on_round=lambda _: bar.advance(), reference="original")
    base = timings["original"].p50_ms
    variants = [name for name in timings if name != "original"]

    def latency_of(name: str) -> dict[str, Any]:
        # Against every other variant of the run, paired per round: what the choice compares.
        paired = {other: versus(timings[name], timings[other], options.latency).to_json()
                  for other in variants if other != name}
        return timings[name].to_json() | {"paired": paired}

    records = [
        replace(r, latency=latency_of(r.name), speedup=speedup_of(timings[r.name], base))
        if r.name in timings else r
        for r in state.records
    ]
    for r in records:
        if r.latency:
            state.log(f"{r.name}: p50 {r.latency['p50_ms']:.2f} ms, {ratio_text(timings[r.name])} "
                      f"(original p50 {base:.2f} ms)")
    decision = choose([measured_from(r) for r in records if _allowed(r, options)],
                      device=options.device, baseline=BASELINE)
    records = [replace(r, reason=decision.reasons.get(
        r.name, _unchanged(r, options) or f"not a candidate for --precision {options.precision}"))
        for r in records]
    state.log(f"recommended: {decision.recommended or 'none'}")
    latency = options.latency
    measurement = measurement_record(records, original, state.eval_set, state.threads) | {
        "latency_input": {k: list(v.shape) for k, v in feed.items()},
        "latency_real_tokens": _real_tokens(feed),
        "latency_config": {"warmup": latency.warmup, "rounds": latency.rounds,
                           "max_rounds": latency.round_cap, "precision": latency.precision,
                           "confidence": latency.confidence,
                           "rounds_run": timings["original"].runs},
        "original": {"latency": timings["original"].to_json(), "task_metric": original.eval_score},
    }
    return replace(state, records=tuple(records), measurement=measurement)


def measurement_record(records: Sequence[VariantRecord], original: Original,
                       eval_set: EvalSet | None, threads: int) -> dict[str, Any]:
    """The manifest's ``measurement`` facts that do not come from timing."""
    from benchmarks.hardware import cpu_info
    from benchmarks.masking import masked_outputs
    from benchmarks.splits import calibration_record
    from convert_model.core.omp import effective_wait_policy

    return {
        "threads": threads,
        "cpu": cpu_info(),
        "latency_input": None,
        "latency_real_tokens": None,
        "latency_config": None,
        "omp_wait_policy": effective_wait_policy(),  # PyTorch's idle threads spin?
        "masked_outputs": masked_outputs(original.examples[0], original.references[0]),
        "calibration": calibration_record(original.split, records) if original.split else None,
        "original": {"latency": None, "task_metric": original.eval_score},
        "eval": None
        if eval_set is None
        else {"metric": eval_set.metric, "output": eval_set.output, "examples": eval_set.size},
    }


def _real_tokens(feed: Mapping[str, Any]) -> int | None:
    """How many positions of the timed input its attention mask sets (None without a mask)."""
    from benchmarks.masking import mask_inputs

    masks = mask_inputs(feed)
    return int(next(iter(masks.values())).sum()) if masks else None


def _untimed(state: ConversionState, why: str) -> ConversionState:
    """Records and measurement when timing is skipped: nothing is chosen."""
    records = tuple(replace(r, reason=f"not timed: {why}") for r in state.records)
    measurement: Mapping[str, Any] = measurement_record(
        records, state.reference, state.eval_set, state.threads) | {"skipped": why}
    return replace(state, records=records, measurement=measurement)


def _unchanged(record: VariantRecord, options: ConvertOptions) -> str | None:
    """Why an fp32 variant is the export over again (not timed, not a candidate), or None.

    An optimizer that fused nothing and left the node count as it was (a tree ensemble is
    one node) wrote the same computation: timing it against the export measures noise, and
    at a few microseconds noise can look like a gain. A preset asked for by name is timed
    all the same (the export is then no candidate).
    """
    details = record.details
    if (options.preset is not None or record.name == BASELINE or record.precision != BASELINE
            or details.get("fusions") != {}
            or details.get("nodes_before") != details.get("nodes_after")):
        return None
    return (f"not timed: the optimizer changed no operator of the {BASELINE} export "
            f"({details.get('nodes_after')} node(s) before and after), so it runs as "
            f"{BASELINE} does")


def _allowed(record: VariantRecord, options: ConvertOptions) -> bool:
    """fp32 is a candidate under auto and fp32; a forced precision or preset excludes it."""
    if _unchanged(record, options) is not None:
        return False
    if record.name == BASELINE:
        return options.preset is None and options.precision in ("auto", BASELINE)
    return True
