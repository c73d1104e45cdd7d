"""The original model's outputs that every variant is compared with, measured once."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.evaluate import EvalSet, Inputs, Outputs, run_batched, task_score
from benchmarks.parity import require_finite_original
from benchmarks.splits import DataSplit
from converters.types import LoadedModel


@dataclass(frozen=True, kw_only=True)
class Original:
    """The original's outputs on the check inputs and, when there is one, on the eval set."""

    examples: tuple[Inputs, ...]
    references: tuple[Outputs, ...]
    eval_set: EvalSet | None
    eval_outputs: Outputs | None
    eval_score: float | None
    split: DataSplit | None = None  # calibration data, apart from the rows that judge

    def latency_feed(self) -> Inputs:
        """One batch-1 input: the eval set's first example, else the first check input."""
        if self.eval_set is not None:
            return self.eval_set.head(1)
        return self.examples[0]


def measure_original(loaded: LoadedModel, eval_set: EvalSet | None, batch_size: int,
                     split: DataSplit | None = None) -> Original:
    """Run the original on the check inputs and, when given, the eval set.

    Raises:
        CheckpointError: when the original's own outputs hold NaN or Inf.
    """
    references = tuple(loaded.run(example) for example in loaded.examples)
    eval_outputs = run_batched(loaded.run, eval_set.inputs, batch_size) if eval_set else None
    require_finite_original(references + ((eval_outputs,) if eval_outputs else ()),
                            str(loaded.source))
    score = task_score(eval_set, eval_outputs) if eval_set is not None and eval_outputs else None
    return Original(
        examples=loaded.examples,
        references=references,
        eval_set=eval_set,
        eval_outputs=eval_outputs,
        eval_score=score,
        split=split,
    )
