"""The pipeline's middle stages: measure the original, build variants, time them, choose.

Orchestration only: passes live in ``optimizers/``, measuring in ``benchmarks/``, the
decision rule in ``optimizers/select.py``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.evaluate import (
    EVAL_CHECK,
    EvalSet,
    Inputs,
    Outputs,
    check_records,
    run_batched,
    task_score,
)
from benchmarks.latency import measure_interleaved
from benchmarks.parity import ParityBudget, compare, failures, metric_failure
from convert_model.core.errors import OptimizationError, UsageError
from convert_model.core.hashing import sha256_file
from converters.export_tabular import TABULAR
from converters.types import LoadedModel
from optimizers.types import Variant

Log = Callable[[str], None]
TABULAR_MAX_ABS_DIFF = 1e-5  # class probabilities of trees agree to float32 rounding
NOT_KEPT = ""  # VariantRecord.file of a variant measured but not written into the bundle


@dataclass(frozen=True, kw_only=True)
class Original:
    """The original model's outputs that every variant is compared against."""

    examples: tuple[Inputs, ...]
    references: tuple[Outputs, ...]
    eval_set: EvalSet | None
    eval_outputs: Outputs | None
    eval_score: float | None


def set_torch_threads(threads: int) -> None:
    """Give PyTorch the same thread count as onnxruntime, so the comparison is fair."""
    import torch

    torch.set_num_threads(threads)


def measure_original(loaded: LoadedModel, eval_set: EvalSet | None, batch_size: int) -> Original:
    """Run the original on the check inputs and, when given, the eval set."""
    references = tuple(loaded.run(example) for example in loaded.examples)
    eval_outputs = run_batched(loaded.run, eval_set.inputs, batch_size) if eval_set else None
    score = task_score(eval_set, eval_outputs) if eval_set is not None and eval_outputs else None
    return Original(
        examples=loaded.examples,
        references=references,
        eval_set=eval_set,
        eval_outputs=eval_outputs,
        eval_score=score,
    )


def ort_runner(path: Path, threads: int) -> Callable[[Inputs], Outputs]:
    """An onnxruntime session on ``path`` as a runner."""
    from converters import onnx_graph

    sess = onnx_graph.session(path, threads)
    return lambda feed: onnx_graph.run(sess, feed)


def measure_parity(
    variant: Variant,
    folder: Path,
    original: Original,
    budget: ParityBudget,
    threads: int,
    batch_size: int,
) -> Any:
    """Parity at the check shapes and over the eval set, the task metric, and the verdict."""
    from convert_model.bundle.manifest import VariantRecord

    run = ort_runner(variant.path, threads)
    records = check_records(run, original.examples, original.references)
    score = None
    metric_line = None
    if original.eval_set is not None and original.eval_outputs is not None:
        outputs = run_batched(run, original.eval_set.inputs, batch_size)
        records += compare(original.eval_outputs, outputs, EVAL_CHECK)
        score = task_score(original.eval_set, outputs)
        if original.eval_score is not None:
            metric_line = metric_failure(
                original.eval_set.metric, original.eval_score, score, budget
            )
    lines = failures(records, budget) + ([metric_line] if metric_line else [])
    return VariantRecord(
        name=variant.name,
        file=str(variant.path.relative_to(folder)),
        sha256=sha256_file(variant.path),
        precision=variant.precision,
        device=variant.device,
        budget=budget,
        parity=tuple(records),
        failures=tuple(lines),
        recipe=variant.recipe,
        details=variant.details,
        size_bytes=_size(variant.path),
        task_metric=score,
    )


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def fp32_record(path: Path, folder: Path, original: Original, options: Any, threads: int,
                framework: str = "torch") -> Any:
    """The exported graph, measured with the fp32 budget (tighter for tree ensembles)."""
    variant = Variant(
        name="fp32", path=path, precision="fp32", device="cpu", recipe=({"pass": "export"},)
    )
    budget = options.budgets["fp32"]
    if framework in TABULAR and (budget.max_abs_diff is None
                                 or budget.max_abs_diff > TABULAR_MAX_ABS_DIFF):
        budget = replace(budget, max_abs_diff=TABULAR_MAX_ABS_DIFF)
    record = measure_parity(variant, folder, original, budget, threads, options.batch_size)
    if framework in TABULAR:
        rows = differing_rows(original, ort_runner(path, threads), TABULAR_MAX_ABS_DIFF)
        record = replace(record, details={**record.details, "differing_rows": rows})
    return record


def differing_rows(original: Original, run: Callable[[Inputs], Outputs], atol: float) -> list[Any]:
    """Every check row whose outputs differ from the original's beyond ``atol`` (first 100)."""
    import numpy as np

    found: list[Any] = []
    for check, (feed, reference) in enumerate(
        zip(original.examples, original.references, strict=True)
    ):
        got = run(feed)
        rows = np.asarray(next(iter(feed.values())))
        for name, expected in reference.items():
            diff = np.abs(np.asarray(got[name], np.float64) - np.asarray(expected, np.float64))
            diff = diff.reshape(len(diff), -1).max(axis=1)
            for row in np.flatnonzero(~(diff <= atol)):
                found.append({"check": check, "row": int(row), "output": name,
                              "max_abs_diff": float(diff[row]),
                              "input": [float(v) for v in rows[row].reshape(-1)]})
    return found[:100]


def fuse_config_for(loaded: LoadedModel) -> Any:
    """Fusion settings from the model's config: its type, heads and hidden size."""
    from optimizers.fuse import FuseConfig

    config = getattr(loaded.hf_model, "config", None)
    return FuseConfig(
        model_type=loaded.model_type if config is not None else None,
        num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
    )


def calibration_batches(
    options: Any, original: Original, input_names: Sequence[str]
) -> list[Inputs]:
    """Calibration inputs: ``--sample-data``, else the eval set's head, else the check inputs."""
    import numpy as np

    if options.sample_data is not None:
        try:
            with np.load(options.sample_data, allow_pickle=False) as data:
                batch = {n: data[n] for n in input_names if n in data.files}
        except (OSError, ValueError) as e:
            raise UsageError(f"{options.sample_data}: cannot read sample data ({e})") from e
        missing = [n for n in input_names if n not in batch]
        if missing:
            raise UsageError(f"{options.sample_data}: sample data lacks inputs {missing}")
        return [batch]
    if original.eval_set is not None:
        return [original.eval_set.head(64)]
    return list(original.examples)


def candidate_presets(options: Any, loaded: LoadedModel) -> tuple[str, ...]:
    """Which presets to build: ``--preset``, else those of ``--precision``.

    Under ``auto``, static int8 is built only for graphs the transformer optimizer does not
    know (CNNs, MLPs): transformers' activation outliers make it lose to dynamic int8.
    """
    from optimizers.fuse import ort_model_type
    from optimizers.presets import PRECISION_PRESETS

    if options.preset is not None:
        return (options.preset,)
    if loaded.framework in TABULAR and options.precision == "auto":
        return ("cpu-fp32",)  # trees have no MatMul to quantize and fp16 thresholds break splits
    names = PRECISION_PRESETS[options.precision]
    if options.precision == "auto" and ort_model_type(fuse_config_for(loaded).model_type):
        names = tuple(n for n in names if not n.startswith("cpu-int8-static"))
    return names


def failed_record(name: str, precision: str, device: str, budget: ParityBudget, error: str) -> Any:
    """A candidate that could not be built or run, with the reason."""
    from convert_model.bundle.manifest import VariantRecord

    return VariantRecord(
        name=name,
        file=NOT_KEPT,
        sha256="",
        precision=precision,
        device=device,
        budget=budget,
        parity=(),
        failures=(error,),
    )


def build_variants(
    src: Path,
    folder: Path,
    loaded: LoadedModel,
    original: Original,
    options: Any,
    threads: int,
    log: Log,
) -> list[Any]:
    """Build each candidate preset and measure its parity; failures are recorded, not raised."""
    from optimizers.presets import build, get_preset

    fuse_config = fuse_config_for(loaded)
    calibration = calibration_batches(options, original, loaded.input_names)
    records = []
    for name in candidate_presets(options, loaded):
        preset = get_preset(name)
        budget = options.budgets[preset.precision]
        try:
            variant = build(preset, src, folder, fuse_config, calibration)
            record = measure_parity(variant, folder, original, budget, threads, options.batch_size)
        except OptimizationError as e:
            log(f"{name}: {e}")
            records.append(failed_record(name, preset.precision, preset.device, budget, str(e)))
            continue
        except Exception as e:  # noqa: BLE001  e.g. an fp16 kernel missing on this CPU
            message = (
                f"cannot run on this machine's onnxruntime: {type(e).__name__}: "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            )
            log(f"{name}: {message}")
            records.append(failed_record(name, preset.precision, preset.device, budget, message))
            continue
        fusions = record.details.get("fusions")
        log(
            f"{name}: {'within budget' if record.passed else 'outside budget'}"
            + (f", task metric {record.task_metric:.4f}" if record.task_metric is not None else "")
            + (f", fusions {dict(fusions)}" if fusions else "")
        )
        records.append(record)
    return records


def latency_feed(original: Original) -> Inputs:
    """One batch-1 input: the eval set's first example, else the first check input."""
    if original.eval_set is not None:
        return original.eval_set.head(1)
    return original.examples[0]


def time_and_choose(
    records: list[Any],
    folder: Path,
    loaded: LoadedModel,
    original: Original,
    eval_set: EvalSet | None,
    options: Any,
    threads: int,
    log: Log,
    on_round: Callable[[int], None] | None = None,
) -> tuple[list[Any], Mapping[str, Any]]:
    """Time the original and every runnable variant in one interleaved run, then choose."""
    from benchmarks.hardware import cpu_info
    from optimizers.select import Measured, choose

    feed = latency_feed(original)
    runners: dict[str, Callable[[], object]] = {"original": lambda: loaded.run(feed)}
    for record in records:
        if record.device == options.device and record.file != NOT_KEPT:
            run = ort_runner(folder / record.file, threads)
            runners[record.name] = functools.partial(run, feed)
    batch = len(next(iter(feed.values())))
    timings = measure_interleaved(runners, options.latency, batch_size=batch, on_round=on_round)
    base = timings["original"].p50_ms
    records = [
        replace(
            r, latency=timings[r.name].to_json(), speedup=round(base / timings[r.name].p50_ms, 3)
        )
        if r.name in timings
        else r
        for r in records
    ]
    for r in records:
        if r.latency:
            log(
                f"{r.name}: p50 {r.latency['p50_ms']:.2f} ms, {r.speedup:.2f}x the original "
                f"({base:.2f} ms)"
            )
    decision = choose(
        [
            Measured(
                name=r.name,
                precision=r.precision,
                device=r.device,
                failures=r.failures,
                p50_ms=r.latency["p50_ms"] if r.latency else None,
                accuracy=_accuracy(r),
            )
            for r in records
            if _allowed(r, options)
        ],
        device=options.device,
        baseline="fp32",
    )
    records = [
        replace(
            r,
            reason=decision.reasons.get(
                r.name, f"not a candidate for --precision {options.precision}"
            ),
        )
        for r in records
    ]
    log(f"recommended: {decision.recommended or 'none'}")
    records = [_keep_or_drop(r, folder, decision.recommended) for r in records]
    measurement = {
        "threads": threads,
        "cpu": cpu_info(),
        "latency_input": {k: list(v.shape) for k, v in feed.items()},
        "latency_config": {"warmup": options.latency.warmup, "rounds": options.latency.rounds},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # PyTorch's idle threads spin?
        "original": {"latency": timings["original"].to_json(), "task_metric": original.eval_score},
        "eval": None
        if eval_set is None
        else {"metric": eval_set.metric, "output": eval_set.output, "examples": eval_set.size},
    }
    return records, measurement


def _accuracy(record: Any) -> float | None:
    """How close a variant is: its task metric, else its worst min cosine."""
    if record.task_metric is not None:
        return float(record.task_metric)
    cosines = [p.min_cosine for p in record.parity if p.min_cosine is not None]
    return min(cosines) if cosines else None


def _allowed(record: Any, options: Any) -> bool:
    """fp32 is a candidate under auto and fp32; a forced precision or preset excludes it."""
    if record.name == "fp32":
        return options.preset is None and options.precision in ("auto", "fp32")
    return True


def _keep_or_drop(record: Any, folder: Path, recommended: str | None) -> Any:
    """Keep fp32, the recommended variant and a passing GPU variant; delete the other files."""
    keep = record.name in ("fp32", recommended) or (record.device != "cpu" and record.passed)
    if keep or record.file == NOT_KEPT:
        return record
    for path in folder.glob(record.file + "*"):
        path.unlink()
    return replace(record, file=NOT_KEPT)


def recover_int8(records: list[Any], src: Path, folder: Path, loaded: LoadedModel,
                 original: Original, options: Any, threads: int, log: Log,
                 started: float | None = None) -> list[Any]:
    """The int8 search (``convert_model.stage_int8``): its best candidate joins the records.

    ``started``: ``time.monotonic()`` when the optimise stage began (its budget covers it).
    """
    from convert_model.stage_int8 import search_int8

    return search_int8(records, src, folder, loaded, original, options, threads, log,
                       started=started)
