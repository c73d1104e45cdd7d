"""Win back accuracy by keeping the nodes that lose the most of it in fp32, greedily.

Rules:
- Candidates are the nodes the quantizer would quantize, ranked by the error each adds
  (measured by the caller, worst first).
- Step k keeps the top 1, 2, 4, … ranked nodes in fp32 (doubling, so a handful of steps
  covers a deep model), rebuilds, and asks the caller to judge the result.
- The search stops at the first result within budget, or when a result is no longer
  clearly faster than fp32 (more exclusions only make it slower), or after ``max_steps``.
  "Clearly faster" is the caller's paired statistic: the variant's time over fp32's, round
  by round, with its whole confidence interval below one (``SEARCH_LATENCY`` in
  ``benchmarks.latency`` says how long to time, ``select.clearly_faster`` decides), never
  two noisy medians.
- Every step is recorded with what was excluded and why the search went on or stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Judgement:
    """The caller's verdict on one rebuilt variant."""

    failures: tuple[str, ...]
    faster_than_fp32: bool
    detail: str = ""

    @property
    def passed(self) -> bool:
        """Within the accuracy budget."""
        return not self.failures


@dataclass(frozen=True, kw_only=True)
class Step:
    """One rebuild: the nodes kept in fp32 and the verdict."""

    excluded: tuple[str, ...]
    judgement: Judgement

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "excluded": list(self.excluded),
            "passed": self.judgement.passed,
            "faster_than_fp32": self.judgement.faster_than_fp32,
            "failures": list(self.judgement.failures),
            "detail": self.judgement.detail,
        }


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """The last variant built (None if none), the steps, and why the search stopped."""

    variant: Any
    excluded: tuple[str, ...]
    steps: tuple[Step, ...]
    stopped: str

    @property
    def passed(self) -> bool:
        """Whether the search found a variant within budget that is faster than fp32."""
        return (
            bool(self.steps)
            and self.steps[-1].judgement.passed
            and self.steps[-1].judgement.faster_than_fp32
        )


def search(
    ranked: Sequence[str],
    build: Callable[[tuple[str, ...]], Any],
    judge: Callable[[Any], Judgement],
    max_steps: int = 6,
) -> SearchResult:
    """Run the greedy search; ``build`` takes the nodes to exclude and returns a variant."""
    steps: list[Step] = []
    variant = None
    count = 1
    while len(steps) < max_steps and ranked:
        excluded = tuple(ranked[:count])
        variant = build(excluded)
        judgement = judge(variant)
        steps.append(Step(excluded=excluded, judgement=judgement))
        if not judgement.faster_than_fp32:
            return SearchResult(
                variant=variant,
                excluded=excluded,
                steps=tuple(steps),
                stopped="no longer faster than fp32",
            )
        if judgement.passed:
            return SearchResult(
                variant=variant, excluded=excluded, steps=tuple(steps), stopped="within budget"
            )
        if count >= len(ranked):
            break
        count = min(count * 2, len(ranked))
    stopped = (
        "every candidate node excluded"
        if ranked and count >= len(ranked)
        else f"step limit ({max_steps}) reached"
        if ranked
        else "no candidate nodes"
    )
    return SearchResult(
        variant=variant,
        excluded=steps[-1].excluded if steps else (),
        steps=tuple(steps),
        stopped=stopped,
    )


def quantizable_nodes(
    path: Path, op_types: Sequence[str]
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Nodes of ``op_types`` with a constant weight: name → (output, activation inputs)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    constants = {i.name for i in model.graph.initializer}
    constants |= {out for n in model.graph.node if n.op_type == "Constant" for out in n.output}
    found = {}
    for node in model.graph.node:
        if node.op_type in op_types and any(i in constants for i in node.input):
            activations = tuple(i for i in node.input if i and i not in constants)
            found[node.name] = (node.output[0], activations)
    return found
