"""Stage 3: run the original, and measure the exported fp32 graph against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from benchmarks.original import measure_original
from benchmarks.parity import OutputParity, describe
from convert_model.core.names import BASELINE
from convert_model.stages.records import differing_rows, measure_parity
from convert_model.state import ConversionState
from converters.export import export_causes
from converters.export_tabular import TABULAR
from converters.onnx_graph import runner
from optimizers.select import broken_graph
from optimizers.types import Variant

TABULAR_MAX_ABS_DIFF = 1e-5  # class probabilities of trees agree to float32 rounding


def set_original_threads(framework: str, threads: int) -> None:
    """Give the original the thread count onnxruntime gets, so the comparison is fair.

    PyTorch takes it directly; tree libraries (XGBoost, LightGBM) and scikit-learn run on
    OpenMP and BLAS pools sized from the host, which ``threadpoolctl`` caps. An ONNX source
    runs on onnxruntime, already at ``threads``.
    """
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
    elif framework in TABULAR:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)  # stays in force for this conversion's process


def run(state: ConversionState) -> ConversionState:
    """The original's outputs, and the fp32 record (a tighter budget for tree ensembles)."""
    loaded, options = state.model, state.options
    set_original_threads(loaded.framework, state.threads)
    original = measure_original(loaded, state.eval_set, options.eval.batch_size, state.split)
    path = state.exported.path
    variant = Variant(name=BASELINE, path=path, precision=BASELINE, device="cpu",
                      recipe=({"pass": "export"},))
    budget = options.budgets[BASELINE]
    tabular = loaded.framework in TABULAR
    if tabular and (budget.max_abs_diff is None or budget.max_abs_diff > TABULAR_MAX_ABS_DIFF):
        budget = replace(budget, max_abs_diff=TABULAR_MAX_ABS_DIFF)
    record = measure_parity(variant, state.staging, original, budget, state.threads,
                            options.eval.batch_size)
    if tabular:
        rows = differing_rows(original, runner(path, state.threads), TABULAR_MAX_ABS_DIFF)
        record = replace(record, details={**record.details, "differing_rows": rows})
    for parity in _worst(record.parity):
        state.log(describe(parity))
    broken = broken_graph(record.parity)
    if broken:
        causes = export_causes(state.exported.attempts) or ["no exporter reported a cause"]
        record = replace(record, failures=(*record.failures, f"graph broken ({broken}); "
                                           f"export: {'; '.join(causes)}"))
        state.log(f"the fp32 graph is broken ({broken}): skipping optimisation and timing")
        for cause in causes:
            state.log(f"  {cause}")
    if original.eval_score is not None and state.eval_set is not None:
        state.log(f"task metric {state.eval_set.metric}: original {original.eval_score:.4f}, "
                  f"fp32 {record.task_metric:.4f} ({state.eval_set.size} examples)")
    return replace(state, original=original, records=(record,), broken=broken)


def _worst(records: Sequence[OutputParity]) -> list[OutputParity]:
    """Per output name, the record with the largest abs diff."""
    worst: dict[str, OutputParity] = {}
    for r in records:
        if r.name not in worst or r.max_abs_diff > worst[r.name].max_abs_diff:
            worst[r.name] = r
    return list(worst.values())
