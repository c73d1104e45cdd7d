"""What the int8 search measures: one sensitivity pass, a quick screen, a short paired timing.

Measuring only; ``optimizers.int8_search`` decides. Every figure here is against the fp32
graph, whose session and outputs are made once and reused by every candidate:

- ``Probe.sensitivity``: each quantizable node's own error under a quantized graph (once,
  on per-channel int8), on the unmasked positions of the sample feeds (the attention mask
  of each feed, when it has one): the nodes that lose most even with per-channel weights.
- ``weight_spread``: per MatMul, how far its output channels' weight ranges differ (the
  widest over the narrowest): one scale per tensor crushes the narrow channels by that
  factor, so these are the nodes per-channel weights help. Read from the weights, not run:
  a node's output error misses it when a crushed channel is small there and amplified
  later (a key channel that the query scales up again).
- ``Probe.activation_ranges``: the largest ``|x|`` per channel (last axis) of activation
  tensors on the sample feeds, every position (dynamic int8 sees padding too): what the
  SmoothQuant-style scaling moves into the weights.
- ``Probe.screen``: parity of a candidate's outputs on those same feeds: a candidate that
  misses the budget there is not worth the eval set.
- ``Probe.paired_latency``: the candidate, fp32 and the best candidate so far timed in one
  short interleaved run, so their ratios hold on a busy machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.latency import (
    SEARCH_LATENCY,
    LatencyConfig,
    RatioEstimate,
    measure_interleaved,
    versus,
)
from benchmarks.node_error import NodeError, node_errors, run_exposed
from benchmarks.parity import OutputParity, compare

MASK_INPUT = "attention_mask"
_TINY = 1e-12
PAIRED = SEARCH_LATENCY  # timed until the paired ratio is known to 3%, as the choice is


@dataclass(frozen=True, kw_only=True)
class PairedLatency:
    """A candidate timed with fp32 (and the best candidate so far) in the same rounds.

    ``vs_fp32`` and ``vs_rival``: the candidate's time over theirs, the median of the
    per-round ratios with its interval (``benchmarks.latency.RatioEstimate``), the
    statistic the final choice uses.
    """

    p50_ms: float
    fp32_p50_ms: float
    vs_fp32: RatioEstimate
    vs_rival: RatioEstimate | None = None


def weight_spread(path: Path, nodes: Sequence[str]) -> dict[str, float]:
    """For each MatMul/Gemm in ``nodes`` with a 2-D constant weight: max over min channel range."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {i.name: i for i in model.graph.initializer}
    wanted = set(nodes)
    spread: dict[str, float] = {}
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        name = next((i for i in node.input if i in weights), None)
        if name is None:
            continue
        w = numpy_helper.to_array(weights[name]).astype(np.float64)
        if w.ndim != 2:
            continue
        transposed = any(a.name == "transB" and a.i for a in node.attribute)
        per_channel = np.abs(w).max(axis=1 if transposed else 0)  # one range per output
        spread[node.name] = float(per_channel.max() / max(float(per_channel.min()), _TINY))
    return spread


def _session_runner(path: Path, threads: int) -> Callable[[Mapping[str, np.ndarray]], Any]:
    from converters import onnx_graph

    sess = onnx_graph.session(path, threads)
    return lambda feed: onnx_graph.run(sess, feed)


class Probe:
    """Measurements against one fp32 graph, on fixed sample feeds and one latency feed."""

    def __init__(self, fp32: Path, feeds: Sequence[Mapping[str, np.ndarray]],
                 latency_feed: Mapping[str, np.ndarray], threads: int,
                 latency: LatencyConfig = PAIRED) -> None:
        """Open the fp32 session once and keep its outputs on ``feeds``."""
        self.fp32 = fp32
        self.feeds = list(feeds)
        self.latency_feed = latency_feed
        self.threads = threads
        self.latency = latency
        self._fp32_run = _session_runner(fp32, threads)
        self._fp32_outputs = [self._fp32_run(feed) for feed in self.feeds]

    @property
    def masks(self) -> list[np.ndarray | None]:
        """Each feed's attention mask (None where it has none)."""
        return [np.asarray(f[MASK_INPUT], np.float64) if MASK_INPUT in f else None
                for f in self.feeds]

    def sensitivity(self, quantized: Path,
                    nodes: Mapping[str, tuple[str, Sequence[str]]]) -> list[NodeError]:
        """Each node's own error in ``quantized`` against fp32, worst first (masked)."""
        return node_errors(self.fp32, quantized, nodes, self.feeds, self.threads,
                           masks=self.masks)

    def activation_ranges(self, tensors: Sequence[str],
                          graph: Path | None = None) -> dict[str, np.ndarray]:
        """Per tensor, the largest absolute value per channel over every feed and position.

        ``graph``: another graph of the same model (a fused one), for its own tensors.
        """
        from benchmarks.activation_ranges import channel_ranges

        values = run_exposed(graph or self.fp32, tensors, self.feeds, self.threads)
        return {name: channel_ranges(values[name])
                for name in tensors if name in values and values[name][0].ndim >= 1}

    def runner(self, path: Path) -> Callable[[Mapping[str, np.ndarray]], Any]:
        """A session on ``path`` as a runner (open it once per candidate)."""
        return _session_runner(path, self.threads)

    def screen(self, run: Callable[[Mapping[str, np.ndarray]], Any]) -> list[OutputParity]:
        """Parity of ``run``'s outputs with fp32's on the sample feeds, one record per output."""
        return [r for check, (feed, reference) in enumerate(
                    zip(self.feeds, self._fp32_outputs, strict=True))
                for r in compare(reference, run(feed), check)]

    def paired_latency(self, run: Callable[[Mapping[str, np.ndarray]], Any],
                       rival: Callable[[Mapping[str, np.ndarray]], Any] | None = None,
                       ) -> PairedLatency:
        """``run``, fp32 and ``rival`` (when given) on the latency feed, interleaved."""
        feed = self.latency_feed
        runners = {"fp32": lambda: self._fp32_run(feed), "candidate": lambda: run(feed)}
        if rival is not None:
            runners["rival"] = lambda: rival(feed)
        timings = measure_interleaved(runners, self.latency, reference="fp32",
                                      pairs=[("candidate", "rival")] if rival else ())
        candidate = timings["candidate"]
        return PairedLatency(
            p50_ms=candidate.p50_ms, fp32_p50_ms=timings["fp32"].p50_ms,
            vs_fp32=versus(candidate, timings["fp32"], self.latency),
            vs_rival=None if rival is None else versus(candidate, timings["rival"],
                                                       self.latency))
