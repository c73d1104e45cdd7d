"""Whether a graph's outputs depend on its padded positions: measured, for the padding trim.

Rules:
- A probe is an input with the last third of its columns (at least one) masked out: the
  mask 0 there, every other sequence input at its pad value (the value it holds most often
  where the mask is 0 already, else 0). Real tokens under those columns become padding, so
  an input without any padding probes the same property.
- An output's sequence axes are those whose size follows the input's length: the graph
  runs on the probe and on the probe one column shorter.
- The trimmed and the untrimmed graph are compared on the probes by ``parity.compare``,
  which reads token-level outputs at their real positions only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from benchmarks.parity import OutputParity, compare
from converters.types import Inputs, Outputs

Run = Callable[[Inputs], Outputs]


def probe(inputs: Inputs, mask: str, sequence: Sequence[str]) -> dict[str, np.ndarray]:
    """``inputs`` with the last third of the ``sequence`` inputs' columns masked out."""
    columns = np.asarray(inputs[mask]).shape[1]
    cut = columns - max(1, columns // 3)
    padded = np.asarray(inputs[mask]) == 0
    feed = {k: np.array(v, copy=True) for k, v in inputs.items()}
    for name in sequence:
        value = feed[name]
        if name == mask:
            value[:, cut:] = 0
            continue
        value[:, cut:] = _most_common(value[padded] if padded.shape == value.shape else ())
    return feed


def _most_common(values: np.ndarray | tuple[()]) -> object:
    if not len(values):
        return 0
    found, counts = np.unique(values, return_counts=True)
    return found[counts.argmax()]


def sequence_axes(run: Run, feed: Inputs, sequence: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Per output, the axes whose size follows the sequence inputs' length."""
    full = run(feed)
    shorter = run({k: np.asarray(v)[:, :-1] if k in sequence else v for k, v in feed.items()})
    return {name: tuple(a for a, (m, n) in enumerate(zip(np.shape(full[name]),
                                                           np.shape(shorter[name]), strict=False))
                        if m != n)
            for name in full}


def compare_trimmed(untrimmed: Run, trimmed: Run,
                    probes: Sequence[Mapping[str, np.ndarray]]) -> list[OutputParity]:
    """Every output of the trimmed graph against the untrimmed one, probe by probe."""
    records: list[OutputParity] = []
    for check, feed in enumerate(probes):
        records += compare(untrimmed(feed), trimmed(feed), check=check, inputs=feed)
    return records
