"""Activation ranges: the largest ``|x|`` per channel of a graph's MatMul inputs, measured."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def channel_ranges(values: Sequence[np.ndarray]) -> np.ndarray:
    """The largest ``|x|`` per channel (last axis) over arrays of one tensor."""
    return np.max([np.abs(v).reshape(-1, v.shape[-1]).max(axis=0) for v in values], axis=0)


def calibration_ranges(src: Path, tensors: Sequence[str],
                       feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Ranges of ``tensors`` (activation inputs of ``src``) over ``feeds``, tensor by tensor."""
    from benchmarks.node_error import run_exposed

    values = run_exposed(src, list(tensors), list(feeds), threads=1)
    return {t: channel_ranges(values[t]) for t in tensors if t in values and values[t]}
