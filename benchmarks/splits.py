"""Calibration data apart from the data that judges: two parts that never share a row.

A static int8 graph whose activation ranges came from the check inputs agrees with the
original on exactly those inputs and on little else, so calibration and judgement use
different rows. Rules, by what data there is:
- ``--sample-data`` (the user's own inputs): a quarter of its rows (at least one, when it
  has two or more) is held out as an extra check set; the rest calibrates.
- an eval set: up to ``MAX_CALIBRATION`` rows, a quarter of it at most, picked by a seeded
  permutation, calibrate; every variant is judged on the remaining rows.
- neither: ``SYNTHETIC_ROWS`` inputs are drawn like the check inputs (same shapes, dtypes
  and value ranges, another seed) and calibrate; the check inputs judge.
When no variant calibrates (``needed`` false), nothing is split off: source ``unused``.
Fewer than ``MIN_CALIBRATION`` calibration examples, or synthetic ones, is a warning the
caller shows on the console and writes into the manifest and the model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.evaluate import EvalSet, Inputs
from convert_model.core.errors import UsageError

MIN_CALIBRATION = 32
MAX_CALIBRATION = 64
SYNTHETIC_ROWS = 32
SOURCES = ("sample-data", "eval-set", "synthetic", "unused")


@dataclass(frozen=True, kw_only=True)
class DataSplit:
    """Calibration batches, extra check batches, the eval rows left to judge, and the source."""

    calibration: tuple[Inputs, ...]
    extra_checks: tuple[Inputs, ...]
    eval_set: EvalSet | None
    source: str

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")

    @property
    def calibration_examples(self) -> int:
        """Rows over every calibration batch."""
        return sum(_rows(batch) for batch in self.calibration)

    @property
    def warning(self) -> str | None:
        """One line when the calibration data is synthetic or small, else None."""
        count = self.calibration_examples
        if self.source == "unused":
            return None
        if self.source == "synthetic":
            return (f"static int8 calibrated on {count} synthetic inputs (random, shaped like "
                    "the check inputs): give --sample-data or --eval-data with real inputs")
        if count < MIN_CALIBRATION:
            return (f"static int8 calibrated on only {count} example(s) from the {self.source} "
                    f"(fewer than {MIN_CALIBRATION}): its activation ranges may not hold")
        return None

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "source": self.source,
            "calibration_examples": self.calibration_examples,
            "held_out_checks": sum(_rows(b) for b in self.extra_checks),
            "judged_eval_examples": self.eval_set.size if self.eval_set is not None else None,
            "disjoint": True,
            "warning": self.warning,
        }


def _rows(batch: Inputs) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def _take(batch: Inputs, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[rows] for k, v in batch.items()}


def shared_rows(first: Inputs, second: Inputs) -> int:
    """How many rows of ``first`` equal a row of ``second`` in every input (same widths only)."""
    if set(first) != set(second) or any(
        np.asarray(first[k]).shape[1:] != np.asarray(second[k]).shape[1:] for k in first
    ):
        return 0
    keys = sorted(first)

    def row_keys(batch: Inputs) -> set[bytes]:
        return {b"".join(np.ascontiguousarray(np.asarray(batch[k])[i]).tobytes() for k in keys)
                for i in range(_rows(batch))}

    seen = row_keys(second)
    return sum(
        b"".join(np.ascontiguousarray(np.asarray(first[k])[i]).tobytes() for k in keys) in seen
        for i in range(_rows(first))
    )


def synthetic_like(example: Inputs, rows: int, seed: int) -> dict[str, np.ndarray]:
    """``rows`` inputs with ``example``'s shapes and dtypes, drawn within its value ranges."""
    rng = np.random.default_rng(seed)
    drawn = {}
    for name, value in example.items():
        array = np.asarray(value)
        shape = (rows, *array.shape[1:])
        low, high = (array.min(), array.max()) if array.size else (0, 1)
        if np.issubdtype(array.dtype, np.floating):
            finite = array[np.isfinite(array)]
            mean = float(finite.mean()) if finite.size else 0.0
            std = float(finite.std()) if finite.size else 1.0
            drawn[name] = rng.normal(mean, std or 1.0, shape).astype(array.dtype)
        elif array.dtype == np.bool_:
            drawn[name] = rng.random(shape) < float(array.mean() if array.size else 0.5)
        else:
            drawn[name] = rng.integers(int(low), int(high) + 1, shape).astype(array.dtype)
    return drawn


def read_sample_data(path: Path, input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """``--sample-data``: an ``.npz`` with one array per model input (first axis = examples)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            batch = {n: data[n] for n in input_names if n in data.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read sample data ({e})") from e
    missing = [n for n in input_names if n not in batch]
    if missing:
        raise UsageError(f"{path}: sample data lacks inputs {missing}")
    return batch


def split_data(
    examples: Sequence[Inputs],
    eval_set: EvalSet | None,
    sample: Inputs | None,
    seed: int = 0,
    needed: bool = True,
) -> DataSplit:
    """Apply the rules above; the parts share no row (``shared_rows`` is 0 between them)."""
    if not needed:
        return DataSplit(calibration=(), extra_checks=(), eval_set=eval_set, source="unused")
    rng = np.random.default_rng(seed)
    if sample is not None and _rows(sample):
        count = _rows(sample)
        held = max(1, count // 4) if count >= 2 else 0
        order = rng.permutation(count)
        checks = (_take(sample, np.sort(order[:held])),) if held else ()
        return DataSplit(calibration=(_take(sample, np.sort(order[held:])),),
                         extra_checks=checks, eval_set=eval_set, source="sample-data")
    if eval_set is not None and eval_set.size >= 2:
        count = max(1, min(MAX_CALIBRATION, eval_set.size // 4))
        order = rng.permutation(eval_set.size)
        calibration, judged = np.sort(order[:count]), np.sort(order[count:])
        rest = replace(eval_set, inputs=_take(eval_set.inputs, judged),
                       labels=np.asarray(eval_set.labels)[judged])
        return DataSplit(calibration=(_take(eval_set.inputs, calibration),), extra_checks=(),
                         eval_set=rest, source="eval-set")
    synthetic = synthetic_like(examples[0], SYNTHETIC_ROWS, seed + 1)
    return DataSplit(calibration=(synthetic,), extra_checks=(), eval_set=eval_set,
                     source="synthetic")


def calibration_record(split: DataSplit, records: Sequence[Any]) -> dict[str, Any]:
    """The manifest's ``calibration`` entry: the split, and the variants that calibrated."""
    used = [r.name for r in records
            if any("static" in str(step.get("pass", "")) for step in r.recipe)]
    return {**split.to_json(), "used_by": used, "warning": split.warning if used else None}

