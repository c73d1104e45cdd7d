"""Run a model over check inputs and a labelled eval set; compare with the original's outputs.

Measuring only: returns parity records and task scores; the caller applies budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.parity import OutputParity, compare
from convert_model.core.errors import UsageError
from convert_model.core.limits import MAX_FEATURES

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
    source: str = ""  # the file it came from, for messages

    @property
    def size(self) -> int:
        """Number of examples."""
        return int(len(self.labels))

    def head(self, count: int) -> dict[str, np.ndarray]:
        """The first ``count`` examples' inputs, as one batch."""
        return {k: v[:count] for k, v in self.inputs.items()}


LABEL_KEYS = ("labels", "label")
SCORE_NAMES = ("prob", "logits", "scores")  # outputs that hold one score per class


def default_metric_output(metric: str, output_names: Sequence[str]) -> str:
    """The output a metric reads when ``--metric-output`` is not given.

    ``accuracy`` takes an argmax over classes, so it reads the class-score output (named
    like probabilities or logits: a classifier's ``probabilities``, not its 1-D ``label``);
    every other metric, and a model without such an output, reads the first output.
    """
    if metric == "accuracy":
        for name in output_names:
            if any(key in name.lower() for key in SCORE_NAMES):
                return name
    return output_names[0]
TEXT_KEY = "text"  # raw texts, for models that take preprocessed text (LoadedModel.encode)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _read_jsonl(path: Path, dtypes: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """One JSON object per line: each model input's value for one example, and its label."""
    import json

    columns: dict[str, list[object]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}: line {number} is not JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise UsageError(f"{path}: line {number} is not a JSON object")
        for key, value in row.items():
            columns.setdefault("labels" if key in LABEL_KEYS else key, []).append(value)
    try:
        return {k: np.asarray(v, dtype=dtypes.get(k)) for k, v in columns.items()}
    except (ValueError, OverflowError, TypeError) as e:
        raise UsageError(f"{path}: rows do not stack into arrays ({e})") from e


def _read_csv(path: Path, input_names: Sequence[str], features: Sequence[str] | None,
              dtypes: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """A header row, then one example per row: the features of a one-input model and a label."""
    import csv

    if len(input_names) != 1:
        raise UsageError(f"{path}: CSV eval data fits one-input (tabular) models; this model "
                         f"takes {list(input_names)}: use JSONL or .npz")
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM
        try:
            table = list(csv.reader(f))
        except csv.Error as e:
            raise UsageError(f"{path}: not a readable CSV file ({e})") from e
    if len(table) < 2:
        raise UsageError(f"{path}: no rows")
    header = table[0]
    if len(header) > MAX_FEATURES + 1:
        raise UsageError(f"{path}: {len(header):,} columns; at most {MAX_FEATURES + 1:,}")
    ragged = next((n for n, r in enumerate(table[1:], start=2) if len(r) != len(header)), None)
    if ragged is not None:
        raise UsageError(
            f"{path}: line {ragged} has {len(table[ragged - 1])} cells; the header has "
            f"{len(header)}"
        )
    rows = [dict(zip(header, r, strict=True)) for r in table[1:]]
    label = next((k for k in LABEL_KEYS if k in header), None)
    if label is None:
        raise UsageError(f"{path}: no 'label' column; columns: {', '.join(header)}")
    wanted = list(features) if features else [c for c in header if c != label]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UsageError(f"{path}: missing feature columns {missing}")

    def number(text: str | None) -> float:
        return float("nan") if text is None or text.strip() == "" else float(text)

    try:
        matrix = [[number(row[c]) for c in wanted] for row in rows]
        labels = [float(row[label]) for row in rows]
    except ValueError as e:
        raise UsageError(f"{path}: a value is not a number ({e})") from e
    name = input_names[0]
    label_array = np.asarray(labels)
    if np.all(label_array == np.round(label_array)):
        label_array = label_array.astype(np.int64)
    return {name: np.asarray(matrix, dtype=dtypes.get(name, np.float32)), "labels": label_array}


def load_eval_set(path: Path, metric: str, output: str, input_names: Sequence[str],
                  dtypes: Mapping[str, np.dtype] | None = None,
                  features: Sequence[str] | None = None,
                  encode: Callable[[Sequence[str]], Inputs] | None = None) -> EvalSet:
    """Read an eval set in any of the three documented formats.

    ``.npz``: one array per input plus ``labels``. ``.jsonl``: one object per example, each
    input's value and ``label``. ``.csv``: one-input models, a column per feature and
    ``label``; empty cells are missing values. For a model that takes preprocessed text
    (``encode`` given), the inputs may instead be one ``text`` column of raw texts.
    """
    from benchmarks.metrics import check_metric

    dtypes = dtypes or {}
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            arrays = _read_jsonl(path, dtypes)
        elif suffix == ".csv":
            arrays = _read_csv(path, input_names, features, dtypes)
        else:
            arrays = _read_npz(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read the eval set ({e})") from e
    if "labels" not in arrays:
        raise UsageError(f"{path}: the eval set has no 'labels' array")
    if arrays["labels"].ndim == 0 or len(arrays["labels"]) == 0:
        raise UsageError(f"{path}: 'labels' must hold one label per example; it holds none")
    if not np.issubdtype(arrays["labels"].dtype, np.number):
        raise UsageError(
            f"{path}: 'labels' must be numbers (class indices or scores), got "
            f"{arrays['labels'].dtype} values"
        )
    if encode is not None and TEXT_KEY in arrays and any(n not in arrays for n in input_names):
        try:
            arrays.update(encode([str(t) for t in arrays.pop(TEXT_KEY)]))
        except ValueError as e:
            raise UsageError(f"{path}: cannot preprocess its texts ({e})") from e
    missing = [n for n in input_names if n not in arrays]
    if missing:
        raise UsageError(f"{path}: the eval set lacks inputs {missing}; it has {sorted(arrays)}")
    labels = arrays.pop("labels")
    try:
        inputs = {n: arrays[n].astype(dtypes[n]) if n in dtypes else arrays[n]
                  for n in input_names}
    except (ValueError, TypeError, OverflowError) as e:
        raise UsageError(f"{path}: an input does not convert to the model's dtype ({e})") from e
    rows = {n: len(v) for n, v in inputs.items()} | {"labels": len(labels)}
    if len(set(rows.values())) != 1:
        raise UsageError(f"{path}: eval arrays have different numbers of rows: {rows}")
    try:
        check_metric(metric)
    except ValueError as e:
        raise UsageError(str(e)) from e
    return EvalSet(inputs=inputs, labels=labels, metric=metric, output=output, source=str(path))


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
    """Parity at every check shape (token-level outputs on real positions only)."""
    return [
        r
        for check, (example, reference) in enumerate(zip(examples, references, strict=True))
        for r in compare(reference, run(example), check, example)
    ]


def task_score(eval_set: EvalSet, outputs: Outputs) -> float:
    """The eval set's metric on ``outputs``."""
    from benchmarks.metrics import score

    if eval_set.output not in outputs:
        raise UsageError(
            f"the eval metric reads output {eval_set.output!r}; the model has {list(outputs)}"
        )
    try:
        return score(eval_set.metric, outputs[eval_set.output], eval_set.labels)
    except ValueError as e:
        raise UsageError(f"{eval_set.source or 'the eval set'}: {e}") from e
