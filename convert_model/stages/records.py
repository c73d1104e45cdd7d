"""A variant measured against the original: parity at the check shapes and on the eval set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.evaluate import EVAL_CHECK, Inputs, Outputs, check_records, run_batched, task_score
from benchmarks.original import Original
from benchmarks.parity import ParityBudget, compare, failures, metric_failure
from convert_model.bundle.manifest import NOT_KEPT, VariantRecord
from convert_model.core.hashing import sha256_file
from converters.onnx_graph import runner
from optimizers.types import Variant


def measure_parity(variant: Variant, folder: Path, original: Original, budget: ParityBudget,
                   threads: int, batch_size: int) -> VariantRecord:
    """Parity at the check shapes and over the eval set, the task metric, and the verdict."""
    run = runner(variant.path, threads)
    records = check_records(run, original.examples, original.references)
    score = None
    metric_line = None
    if original.eval_set is not None and original.eval_outputs is not None:
        outputs = run_batched(run, original.eval_set.inputs, batch_size)
        records += compare(original.eval_outputs, outputs, EVAL_CHECK, original.eval_set.inputs)
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
        size_bytes=sum(p.stat().st_size for p in variant.path.parent.glob(variant.path.name + "*")),
        task_metric=score,
    )


def failed_record(name: str, precision: str, device: str, budget: ParityBudget,
                  error: str) -> VariantRecord:
    """A candidate that could not be built or run, with the reason."""
    return VariantRecord(name=name, file=NOT_KEPT, sha256="", precision=precision, device=device,
                         budget=budget, parity=(), failures=(error,))


def differing_rows(original: Original, run: Callable[[Inputs], Outputs],
                   atol: float) -> list[dict[str, object]]:
    """Every check row whose outputs differ from the original's beyond ``atol`` (first 100)."""
    found: list[dict[str, object]] = []
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
