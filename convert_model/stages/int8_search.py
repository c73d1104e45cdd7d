"""The int8 search: one sensitivity pass, candidates built, timed and judged, under a budget.

The wall-time budget (``--int8-budget``, 60 s) covers the whole optimise stage: the
presets built before the search and the sensitivity pass count against it, though the
search always keeps half of it (``Int8SearchConfig.min_share``).

Orchestration only: candidates are presets (``optimizers.presets.INT8_SEARCH``), the rules
of the search are ``optimizers.int8_search``, the measuring is ``benchmarks.int8_probe``
and ``stages.records.measure_parity``. The best candidate within budget joins the records
with the whole search (steps, sensitivity ranking, where and why it stopped) in its
details; when none is, a record named ``int8-search`` carries the search and says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.original import Original
from convert_model.bundle.manifest import VariantRecord
from convert_model.core.errors import OptimizationError, summary
from convert_model.core.memory import release
from convert_model.options import ConvertOptions
from convert_model.stages.preparation import calibration_batches, fuse_config_for
from convert_model.stages.records import failed_record, measure_parity
from convert_model.state import ConversionState
from converters.export_tabular import TABULAR
from converters.types import LoadedModel
from optimizers.select import COULD_NOT_RUN, PairedRatio

Log = Callable[[str], None]
DEFAULT_BUDGET_S = 60.0
SAMPLE_FEEDS = 16  # rows of batch 1 for the sensitivity pass and the screen
SEARCH_RECORD = "int8-search"
SENSITIVITY_GRAPH = "cpu-int8-plain"  # per-channel dynamic int8 of the unfused graph


class _Builds:
    """The search's candidates on one graph: built once each, timed and judged once each."""

    def __init__(self, src: Path, folder: Path, loaded: LoadedModel, original: Original,
                 options: ConvertOptions, threads: int, probe: Any, log: Log) -> None:
        self.src, self.folder, self.loaded, self.original = src, folder, loaded, original
        self.options, self.threads, self.probe, self.log = options, threads, probe, log
        self.budget = options.budgets["int8"]
        self.fuse_config = fuse_config_for(loaded, threads)
        self.calibration = calibration_batches(options, original, loaded.input_names)
        self.ranked: dict[str, tuple[str, ...]] = {}  # by MixedQuantConfig.protect
        self.ranges: dict[str, Any] = {}  # activation tensor -> largest |x| per channel
        self.records: dict[str, Any] = {}
        self._runners: dict[str, Any] = {}
        self._built: dict[str, Any] = {}

    def protectable(self, name: str) -> int:
        from optimizers.presets import get_preset

        mixed = get_preset(name).mixed
        return 0 if mixed is None else len(self.ranked.get(mixed.protect, ()))

    def build(self, name: str, protected: int) -> Any:
        from optimizers.presets import build, get_preset

        label = f"{name}-{protected}" if protected else name
        if label not in self._built:
            preset = get_preset(name)
            ranked = self.ranked.get(preset.mixed.protect, ()) if preset.mixed else ()
            variant = build(preset, self.src, self.folder, self.fuse_config, self.calibration,
                            name=label, sensitive_nodes=ranked[:protected], ranges=self.ranges,
                            measure=self._measure_ranges)
            try:
                self._run(variant)  # a graph onnxruntime refuses is a build that failed
            except Exception as e:
                self.discard(variant)
                raise OptimizationError(f"{COULD_NOT_RUN}{summary(e)}") from e
            self._built[label] = variant
        return self._built[label]

    def _measure_ranges(self, graph: Path, tensors: Any) -> dict[str, Any]:
        """Ranges of a fused graph's own tensors, kept for the next candidate on it."""
        measured = self.probe.activation_ranges(list(tensors), graph)
        self.ranges.update(measured)
        return measured

    def _run(self, variant: Any) -> Any:
        if variant.name not in self._runners:
            self._runners[variant.name] = self.probe.runner(variant.path)
        return self._runners[variant.name]

    def ratio(self, variant: Any, rival: Any) -> tuple[PairedRatio, PairedRatio | None]:
        timing = self.probe.paired_latency(self._run(variant),
                                           None if rival is None else self._run(rival))
        self.log(f"{variant.name}: {timing.p50_ms:.2f} ms vs fp32 {timing.fp32_p50_ms:.2f} ms")
        return timing.vs_fp32, timing.vs_rival

    def screen(self, variant: Any) -> tuple[tuple[str, ...], float]:
        from benchmarks.parity import failures

        records = self.probe.screen(self._run(variant))
        cosines = [r.min_cosine for r in records if r.min_cosine is not None]
        return tuple(failures(records, self.budget)), min(cosines, default=1.0)

    def parity(self, variant: Any) -> tuple[str, ...]:
        record = measure_parity(variant, self.folder, self.original, self.budget, self.threads,
                                self.options.eval.batch_size)
        self.records[variant.name] = record
        return tuple(record.failures)

    def discard(self, variant: Any) -> None:
        self._runners.pop(variant.name, None)
        self._built.pop(variant.name, None)
        for path in self.folder.glob(variant.path.name + "*"):
            path.unlink()
        release()  # its session's memory, before the next candidate's

    def discard_all_but(self, keep: Any) -> None:
        """Delete every build left over (one made for the sensitivity pass, never tried)."""
        for variant in list(self._built.values()):
            if variant is not keep:
                self.discard(variant)


def run(state: ConversionState, started: float | None = None) -> ConversionState:
    """The state with the search's best candidate (or the record of why none) added."""
    return replace(state, records=tuple(search_int8(state, started)))


def search_int8(state: ConversionState, started: float | None = None) -> list[VariantRecord]:
    """The int8 search for ``--precision auto|int8`` on CPU; the records with its result added.

    ``started``: ``time.monotonic()`` when the optimise stage began (its budget covers it).
    """
    from benchmarks.int8_probe import Probe, weight_spread
    from convert_model.core.errors import OptimizationError
    from optimizers.exclusion import quantizable_nodes
    from optimizers.int8_search import Int8SearchConfig, search
    from optimizers.presets import INT8_SEARCH
    from optimizers.quantize_static import split_rows

    records = list(state.records)
    loaded, options, original = state.model, state.options, state.reference
    src, folder, threads, log = state.exported.path, state.staging, state.threads, state.log
    if (options.preset is not None or options.precision not in ("auto", "int8")
            or options.device != "cpu" or loaded.framework in TABULAR):
        return records
    config = Int8SearchConfig(budget_s=options.int8_budget_s,
                              require_faster=options.precision == "auto")
    feeds = split_rows(calibration_batches(options, original, loaded.input_names), SAMPLE_FEEDS)
    probe = Probe(src, feeds, original.latency_feed(), threads)
    builds = _Builds(src, folder, loaded, original, options, threads, probe, log)
    nodes = quantizable_nodes(src, ("MatMul", "Gemm"))
    ranking: list[dict[str, Any]] = []
    if nodes:
        spread = weight_spread(src, list(nodes))
        builds.ranges = probe.activation_ranges(sorted({a for _, ins in nodes.values()
                                                        for a in ins}))
        builds.ranked["per-channel"] = tuple(sorted(spread, key=spread.__getitem__,
                                                    reverse=True))
        try:
            # The one sensitivity pass, on per-channel int8 (a candidate too, so kept):
            # what stays wrong there is what only fp32 (or float activations) fixes.
            errors = probe.sensitivity(builds.build(SENSITIVITY_GRAPH, 0).path, nodes)
        except OptimizationError as e:
            log(f"int8 sensitivity pass skipped: {e}")
            errors = []
        builds.ranked["fp32"] = tuple(e.node for e in errors if e.own_error > 0)
        ranking = [{"node": e.node, "own_error": round(e.own_error, 6),
                    "output_error": round(e.output_error, 6),
                    "weight_spread": round(spread.get(e.node, 0.0), 2)} for e in errors[:20]]
        if errors:
            log(f"int8 sensitivity over {len(nodes)} nodes, worst: "
                + ", ".join(f"{e.node} ({e.own_error:.3f})" for e in errors[:3]))
    # The budget is the whole optimise stage's: what the other presets and the sensitivity
    # pass took is spent already.
    spent = time.monotonic() - started if started is not None else 0.0
    result = search(INT8_SEARCH, builds.protectable, builds, config, spent_s=spent)
    builds.discard_all_but(result.best)
    summary = {**result.to_json(), "budget_s": config.budget_s, "ranking": ranking,
               "sample_feeds": len(feeds), "spent_before_search_s": round(spent, 2)}
    for step in result.steps:
        log(f"int8 search: {step.candidate}"
            + (f" ({step.protected} protected)" if step.protected else "")
            + f": {step.outcome}" + (f", {step.ratio:.2f}x fp32's time" if step.ratio else ""))
    log(f"int8 search stopped ({result.stopped}) after {result.seconds:.1f} s: "
        + (f"best {result.best.name}" if result.best is not None else "nothing within budget"))
    if result.best is not None:
        record = builds.records[result.best.name]
        return [*records, replace(record, details={**record.details, "int8_search": summary})]
    budget = options.budgets["int8"]
    reason = (f"no int8 candidate within budget and faster than fp32 ({result.stopped})")
    return [*records, replace(failed_record(SEARCH_RECORD, "int8", "cpu", budget, reason),
                              details={"int8_search": summary})]
