"""Run a model over check inputs and a labelled eval set; compare with the original's outputs.

Measuring only: returns parity records and task scores; the caller applies budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.parity import OutputParity, compare
from convert_model.errors import UsageError

Inputs = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]
Runner = Callable[[Inputs], Outputs]
EVAL_CHECK = -1  # OutputParity.check of records measured over the eval set


@dataclass(frozen=True, kw_only=True)
class EvalSet:
    """Labelled data: model-ready inputs by name (first axis = examples), labels, and the metric."""

    inputs: Mapping[str, np.ndarray]
    labels: np.ndarray
    metric: str
    output: str

    @property
    def size(self) -> int:
        """Number of examples."""
        return int(len(self.labels))

    def head(self, count: int) -> dict[str, np.ndarray]:
        """The first ``count`` examples' inputs, as one batch."""
        return {k: v[:count] for k, v in self.inputs.items()}


def load_eval_set(path: Path, metric: str, output: str, input_names: Sequence[str]) -> EvalSet:
    """Read an ``.npz`` eval set: one array per model input plus ``labels``, same first axis."""
    from benchmarks.metrics import check_metric

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read the eval set ({e})") from e
    if "labels" not in arrays:
        raise UsageError(f"{path}: the eval set has no 'labels' array")
    missing = [n for n in input_names if n not in arrays]
    if missing:
        raise UsageError(f"{path}: the eval set lacks inputs {missing}; it has {sorted(arrays)}")
    labels = arrays.pop("labels")
    inputs = {n: arrays[n] for n in input_names}
    rows = {n: len(v) for n, v in inputs.items()} | {"labels": len(labels)}
    if len(set(rows.values())) != 1:
        raise UsageError(f"{path}: eval arrays have different numbers of rows: {rows}")
    try:
        check_metric(metric)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return EvalSet(inputs=inputs, labels=labels, metric=metric, output=output)


def run_batched(run: Runner, inputs: Inputs, batch_size: int = 16) -> Outputs:
    """Run over the first axis in batches and concatenate the outputs."""
    count = len(next(iter(inputs.values())))
    parts: list[Outputs] = []
    for start in range(0, count, batch_size):
        parts.append(run({k: v[start : start + batch_size] for k, v in inputs.items()}))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def check_records(
    run: Runner, examples: Sequence[Inputs], references: Sequence[Outputs]
) -> list[OutputParity]:
    """Parity at every check shape."""
    return [
        r
        for check, (example, reference) in enumerate(zip(examples, references, strict=True))
        for r in compare(reference, run(example), check)
    ]


def task_score(eval_set: EvalSet, outputs: Outputs) -> float:
    """The eval set's metric on ``outputs``."""
    from benchmarks.metrics import score

    if eval_set.output not in outputs:
        raise UsageError(
            f"the eval metric reads output {eval_set.output!r}; the model has {list(outputs)}"
        )
    return score(eval_set.metric, outputs[eval_set.output], eval_set.labels)
