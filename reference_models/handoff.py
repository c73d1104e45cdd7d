"""Writing the files every reference model ships beside its checkpoint: eval set and samples."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

EVAL_FILE = "eval.npz"
SAMPLES_FILE = "samples.json"


def write_eval(folder: Path, inputs: Mapping[str, np.ndarray], labels: np.ndarray) -> Path:
    """Write `eval.npz`: model-ready inputs by input name, plus `labels`; one first dimension."""
    if "labels" in inputs:
        raise ValueError("'labels' is reserved for the labels; rename that input")
    rows = {name: array.shape[0] for name, array in {**inputs, "labels": labels}.items()}
    if len(set(rows.values())) != 1:
        raise ValueError(f"every eval array needs the same number of rows, got {rows}")
    path = folder / EVAL_FILE
    arrays: dict[str, Any] = {**inputs, "labels": labels}
    np.savez(path, **arrays)
    return path


def write_samples(folder: Path, samples: Any) -> Path:
    """Write `samples.json`: a few raw examples (texts, item lists) for a human to read."""
    path = folder / SAMPLES_FILE
    path.write_text(json.dumps(samples, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
