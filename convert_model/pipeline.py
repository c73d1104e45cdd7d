"""The pipeline: a loop over a tuple of stages. It owns progress and names the stage that failed.

Each stage is a function from a ConversionState to the next (``convert_model/stages/``);
the stages that write files run inside the bundle's staging folder, which is renamed into
place only when the last of them returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from convert_model.bundle.manifest import Manifest
from convert_model.core.errors import ConvertModelError, ParityError, UsageError
from convert_model.core.memory import release
from convert_model.core.names import BASELINE, REFERENCE_PREFIX
from convert_model.core.timing_slot import timing_slot
from convert_model.options import ConvertOptions, options_from
from convert_model.progress import Progress
from convert_model.stages import export, fp32, latency, load, optimise, padding, sweep, write
from convert_model.state import ConversionState


def _always(state: ConversionState) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One step of the pipeline.

    Attributes:
        name: what an error from it is prefixed with (``export: ...``).
        title: the progress line, from the state it starts with.
        run: the state in, the next state out.
        applies: whether it runs for this state (generation: generative models only).
        in_bundle: whether it writes into the staging folder.
        timed: whether it measures latency, and so holds the node's timing slot when a fleet
            runs conversions side by side (``convert_model.core.timing_slot``).
    """

    name: str
    title: Callable[[ConversionState], str]
    run: Callable[[ConversionState], ConversionState]
    applies: Callable[[ConversionState], bool] = _always
    in_bundle: bool = True
    timed: bool = False


def _generates(state: ConversionState) -> bool:
    """Only text2text-generation and text-generation models, unless ``--no-generation``."""
    return state.generative


def _generation(state: ConversionState) -> ConversionState:
    # Imported when it runs: it pulls in the generation export, and with it onnxruntime.
    from convert_model.stages import generation

    return generation.run(state)


STAGES: tuple[Stage, ...] = (
    Stage(name="load", title=lambda s: f"load {s.checkpoint}", run=load.run, in_bundle=False),
    Stage(name="export", title=lambda s: "export to ONNX", run=export.run),
    Stage(name="parity", title=lambda s: "check fp32 parity with the original",
          run=lambda s: fp32.run(padding.run(s))),
    Stage(name="optimize", title=lambda s: "optimise and quantize",
          run=optimise.run, applies=optimise.applies),
    Stage(name="measure", title=lambda s: f"measure latency ({s.threads} threads) and choose",
          run=lambda s: latency.run(sweep.run(s)), timed=True),
    Stage(name="generation", title=lambda s: "generation: export with past key/values, check "
          "vs generate", run=_generation, applies=_generates, timed=True),
    Stage(name="bundle", title=lambda s: f"write bundle {s.out}", run=write.run),
)


@dataclass(frozen=True, kw_only=True)
class ConvertResult:
    """A written bundle: where it is, its manifest, and whether every gate passed."""

    out: Path
    manifest: Manifest

    @property
    def passed(self) -> bool:
        """Whether fp32 kept parity and a variant was recommended."""
        return self.manifest.passed

    @property
    def failures(self) -> tuple[str, ...]:
        """What failed: fp32 parity lines, or why no variant could be recommended."""
        lines = tuple(f"{BASELINE}: {line}" for line in self.manifest.variant(BASELINE).failures)
        if not lines and self.manifest.recommended is None:
            lines = tuple(f"{v.name}: {v.reason}" for v in self.manifest.variants)
        generation = self.manifest.generation
        if generation is not None:
            lines += generation.failures
        return lines


def default_out(checkpoint: str) -> Path:
    """``./NAME-onnx`` in the working directory."""
    name = (
        checkpoint[len(REFERENCE_PREFIX):]
        if checkpoint.startswith(REFERENCE_PREFIX)
        else Path(checkpoint).name.split(".")[0] or "model"
    )
    return Path.cwd() / f"{name}-onnx"


def run_stages(state: ConversionState, stages: tuple[Stage, ...] = STAGES) -> ConversionState:
    """Run ``stages`` in order; the bundle stages inside one staging folder.

    An error from a stage carries that stage's name (``error.stage``) for the one-line
    report; an unexpected one gets a note naming the stage and is raised as it is.
    """
    from convert_model.bundle.staging import staging

    progress = state.progress
    with contextlib.ExitStack() as bundle:
        for stage in stages:
            if not stage.applies(state):
                continue
            if stage.in_bundle and state.folder is None:
                keep = (state.source,) if state.source is not None else ()
                state = replace(state, folder=bundle.enter_context(
                    staging(state.out, state.options.force, keep=keep)))
            slot = timing_slot() if stage.timed else contextlib.nullcontext()
            with slot, progress.stage(stage.title(state)):
                try:
                    state = stage.run(state)
                except ConvertModelError as e:
                    e.stage = stage.name
                    raise
                except Exception as e:
                    if hasattr(e, "add_note"):  # Python 3.11+
                        e.add_note(f"convert-model stage: {stage.name}")
                    raise
            release()  # this stage's freed buffers, before the next stage's peak
            progress.total = sum(1 for s in stages if s.applies(state))
    return state


def convert(
    checkpoint: str | Path,
    options: ConvertOptions | None = None,
    *,
    progress: Progress | None = None,
    **values: Any,
) -> ConvertResult:
    """Convert ``checkpoint`` to an ONNX bundle with measured parity and speed.

    Args:
        checkpoint: a path in any supported form, or ``reference:NAME``.
        options: a ConvertOptions; or pass options by name (the command line's, with ``_``
            for ``-``: ``eval_data=``, ``accuracy_budget=``, ``sweep="off"``; see
            ``convert_model.options.OPTIONS``).
        progress: where progress lines go; default prints to stderr.
        **values: options by name, when ``options`` is not given.

    Returns:
        The written bundle. When the fp32 graph fails parity, or no variant qualifies, the
        bundle is still written, marked failed, and ParityError is raised with ``.result``
        set and every failure listed.
    """
    from convert_model.core.omp import apply_wait_policy
    from convert_model.core.threads import usable_threads

    if options is None:
        options = options_from(values)
    elif values:
        raise UsageError("pass either options or options by name, not both")
    apply_wait_policy()  # done on import already; a no-op then
    text = str(checkpoint)
    state = ConversionState(
        checkpoint=text,
        options=options,
        out=Path(options.out) if options.out is not None else default_out(text),
        threads=options.threads or usable_threads(),
        progress=progress or Progress(total=len(STAGES) - 1),
    )
    state = run_stages(state)
    result = ConvertResult(out=state.out, manifest=state.written)
    if not result.passed:
        error = ParityError(f"parity gate failed for {state.out}", result.failures)
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result


def load_original(checkpoint: str, values: Mapping[str, Any] | None = None) -> Any:
    """The checkpoint loaded as the pipeline's load stage loads it (the bundle's "original")."""
    options = options_from(values or {})
    return load.load_checkpoint(checkpoint, options, lambda _: None)[2]
