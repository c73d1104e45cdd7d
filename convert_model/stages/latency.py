"""Stage 5b: time the original and every runnable variant in one interleaved run, and choose."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import replace

from convert_model.bundle.manifest import VariantRecord
from convert_model.core.names import BASELINE
from convert_model.options import ConvertOptions
from convert_model.state import ConversionState
from converters.onnx_graph import runner


def run(state: ConversionState) -> ConversionState:
    """Every record gets its latency, speed-up and the reason it was or was not chosen."""
    from benchmarks.hardware import cpu_info
    from benchmarks.latency import measure_interleaved
    from optimizers.select import Measured, choose

    options, original, loaded = state.options, state.reference, state.model
    feed = original.latency_feed()
    runners: dict[str, Callable[[], object]] = {"original": lambda: loaded.run(feed)}
    for record in state.records:
        if record.device == options.device and record.kept:
            runners[record.name] = functools.partial(
                runner(state.staging / record.file, state.threads), feed)
    batch = len(next(iter(feed.values())))
    with state.progress.bar(options.latency.rounds, "latency rounds") as bar:
        timings = measure_interleaved(runners, options.latency, batch_size=batch,
                                      on_round=lambda _: bar.advance())
    base = timings["original"].p50_ms
    records = [
        replace(r, latency=timings[r.name].to_json(),
                speedup=round(base / timings[r.name].p50_ms, 3))
        if r.name in timings else r
        for r in state.records
    ]
    for r in records:
        if r.latency:
            state.log(f"{r.name}: p50 {r.latency['p50_ms']:.2f} ms, {r.speedup:.2f}x the original "
                      f"({base:.2f} ms)")
    decision = choose(
        [Measured(name=r.name, precision=r.precision, device=r.device, failures=r.failures,
                  cost=r.latency["p50_ms"] if r.latency else None, accuracy=_accuracy(r))
         for r in records if _allowed(r, options)],
        device=options.device, baseline=BASELINE,
    )
    records = [replace(r, reason=decision.reasons.get(
        r.name, f"not a candidate for --precision {options.precision}")) for r in records]
    state.log(f"recommended: {decision.recommended or 'none'}")
    eval_set = state.eval_set
    measurement = {
        "threads": state.threads,
        "cpu": cpu_info(),
        "latency_input": {k: list(v.shape) for k, v in feed.items()},
        "latency_config": {"warmup": options.latency.warmup, "rounds": options.latency.rounds},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # PyTorch's idle threads spin?
        "original": {"latency": timings["original"].to_json(), "task_metric": original.eval_score},
        "eval": None if eval_set is None
        else {"metric": eval_set.metric, "output": eval_set.output, "examples": eval_set.size},
    }
    return replace(state, records=tuple(records), measurement=measurement)


def _accuracy(record: VariantRecord) -> float | None:
    """How close a variant is: its task metric, else its worst min cosine."""
    if record.task_metric is not None:
        return float(record.task_metric)
    cosines = [p.min_cosine for p in record.parity if p.min_cosine is not None]
    return min(cosines) if cosines else None


def _allowed(record: VariantRecord, options: ConvertOptions) -> bool:
    """fp32 is a candidate under auto and fp32; a forced precision or preset excludes it."""
    if record.name == BASELINE:
        return options.preset is None and options.precision in ("auto", BASELINE)
    return True
