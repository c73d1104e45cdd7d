"""What generation is checked on, and the two generators it compares: the original's and the loop's.

``torch_generator`` wraps ``model.generate``; ``ort_generator`` the bundle's own loop
(``convert_model/runtime``) over onnxruntime sessions. Both return only the new tokens,
so their outputs compare row for row. ``generation_failures`` applies a budget to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.generation import Generate, TextScores
from benchmarks.parity import ParityBudget
from converters.types import Inputs, LoadedModel

GENERATION_METRICS = ("token_agreement", "exact_match")
ENCODER_DECODER = "encoder-decoder"


@dataclass(frozen=True, kw_only=True)
class Prompts:
    """What generation is checked on: model inputs by name, and labels when there are any."""

    inputs: Mapping[str, np.ndarray]
    labels: np.ndarray | None
    metric: str | None

    @property
    def size(self) -> int:
        """Number of examples."""
        return len(next(iter(self.inputs.values())))


def prompts_for(loaded: LoadedModel, eval_data: Path | None, metric: str | None) -> Prompts:
    """The eval set's inputs and labels when it has them, else the check inputs, unlabelled."""
    names: list[str] = [n for n in ("input_ids", "attention_mask") if n in loaded.input_names]
    if eval_data is not None and eval_data.suffix == ".npz":
        with np.load(eval_data) as data:
            if all(n in data for n in names) and "labels" in data:
                return Prompts(
                    inputs={n: data[n].astype(np.int64) for n in names},
                    labels=data["labels"].astype(np.int64),
                    metric=metric if metric in GENERATION_METRICS else "token_agreement",
                )
    rows = [example for example in loaded.examples if all(n in example for n in names)]
    # Check inputs differ in width: each is its own batch, their rows side by side.
    width = max(r[names[0]].shape[1] for r in rows)
    stacked = {n: np.concatenate([_pad_right(r[n], width) for r in rows]) for n in names}
    return Prompts(inputs=stacked, labels=None, metric=None)


def _pad_right(array: np.ndarray, width: int) -> np.ndarray:
    # Padding id 0 with mask 0: the mask, not the id, tells the model to ignore it.
    return np.pad(array, ((0, 0), (0, width - array.shape[1])))


def new_tokens(sequences: np.ndarray, kind: str, inputs: Inputs) -> np.ndarray:
    """What ``generate`` produced beyond its start.

    That is after the decoder start token for an encoder-decoder, after the (padded) prompt
    for a decoder-only model.
    """
    start = 1 if kind == ENCODER_DECODER else inputs["input_ids"].shape[1]
    return sequences[:, start:]


def torch_generator(model: Any, kind: str) -> Generate:
    """``model.generate`` as a Generate: greedy or beam, new tokens only."""
    import torch

    def run(
        inputs: Inputs, *, num_beams: int, on_step: Callable[[int], None] | None = None
    ) -> np.ndarray:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
        streamer = _StepStreamer(on_step) if on_step is not None and num_beams == 1 else None
        with torch.inference_mode():
            out = model.generate(
                **tensors, num_beams=num_beams, do_sample=False, use_cache=True,
                streamer=streamer,
            )
        return new_tokens(out.numpy(), kind, inputs)

    return run


class _StepStreamer:
    """A transformers streamer that reports decoding steps: its first put is the prompt."""

    def __init__(self, on_step: Callable[[int], None]) -> None:
        self.on_step = on_step
        self.puts = 0

    def put(self, value: Any) -> None:
        if self.puts > 0:
            self.on_step(self.puts - 1)
        self.puts += 1

    def end(self) -> None:
        """Nothing to flush."""


def ort_generator(folder: Path, files: Mapping[str, str], config_folder: Path,
                  threads: int) -> tuple[Generate, Any]:
    """The bundle's own generation loop over onnxruntime sessions, as a Generate."""
    from convert_model.runtime import Generator

    # The checks are greedy and beam search, as model.generate(do_sample=False) runs them.
    generator = Generator(folder, files=files, config_folder=config_folder, threads=threads,
                          config_overrides={"do_sample": False})

    def run(
        inputs: Inputs, *, num_beams: int, on_step: Callable[[int], None] | None = None
    ) -> np.ndarray:
        sequences = generator.generate(
            inputs["input_ids"], inputs.get("attention_mask"), num_beams=num_beams,
            on_step=on_step,
        )
        return new_tokens(np.asarray(sequences), generator.kind, inputs)

    return run, generator


def bundle_generator(bundle: Path, files: Mapping[str, str], threads: int) -> tuple[Generate, Any]:
    """The bundle's loop over one variant's graphs (role -> path relative to the bundle)."""
    paths = {role: bundle / path for role, path in files.items()}
    folder = next(iter(paths.values())).parent
    return ort_generator(folder, {role: p.name for role, p in paths.items()}, folder.parent,
                         threads)


def generation_failures(*, greedy: float, beam: float, exact: bool, budget: ParityBudget,
                        scores: TextScores | None, original: TextScores | None,
                        metric: str | None, vacuous: bool = False) -> tuple[str, ...]:
    """What a generation variant breaks of ``budget``.

    Rules:
    1. An original that generated only padding/EOS (``vacuous``) proves nothing: a failure.
    2. ``exact`` (the fp32 graphs): greedy and top-beam identity, each at its minimum.
    3. Otherwise, top-beam identity at its minimum, labels or not; and with labels the task
       metric may drop at most ``max_metric_drop``, without them greedy identity at its
       minimum.
    """
    lines: list[str] = []
    if vacuous:
        lines.append("the original generated only padding/EOS: token identity is vacuous")
    if not exact and budget.min_beam_identical is not None and beam < budget.min_beam_identical:
        lines.append(f"top beam identical {beam:.1%} < {budget.min_beam_identical:.0%}")
    if exact:
        if budget.min_greedy_identical is not None and greedy < budget.min_greedy_identical:
            lines.append(f"greedy outputs identical {greedy:.1%} < "
                         f"{budget.min_greedy_identical:.0%}")
        if budget.min_beam_identical is not None and beam < budget.min_beam_identical:
            lines.append(f"top beam identical {beam:.1%} < {budget.min_beam_identical:.0%}")
    elif original is not None and scores is not None and metric is not None:
        drop = getattr(original, metric) - getattr(scores, metric)
        if budget.max_metric_drop is not None and drop > budget.max_metric_drop:
            lines.append(f"{metric} dropped {drop:.4f} > {budget.max_metric_drop}")
    elif budget.min_greedy_identical is not None and greedy < budget.min_greedy_identical:
        lines.append(f"greedy outputs identical {greedy:.1%} < "
                     f"{budget.min_greedy_identical:.0%} (no labels for a task metric)")
    return tuple(lines)
