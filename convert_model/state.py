"""What a conversion knows so far: each stage takes the state and returns the next one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from convert_model.options import ConvertOptions
from convert_model.progress import Progress

if TYPE_CHECKING:
    from benchmarks.evaluate import EvalSet
    from benchmarks.original import Original
    from benchmarks.splits import DataSplit
    from benchmarks.sweep import SweepResult
    from convert_model.bundle.generation import GenerationResult
    from convert_model.bundle.manifest import Manifest, VariantRecord
    from converters.types import ExportedGraph, LoadedModel

T = TypeVar("T")


class StageOrderError(RuntimeError):
    """A stage read a part of the state that no earlier stage filled: a bug in the pipeline."""


def _need(value: T | None, what: str) -> T:
    if value is None:
        raise StageOrderError(f"{what} is read before a stage made it")
    return value


@dataclass(frozen=True, kw_only=True)
class ConversionState:
    """The checkpoint, the options, and every stage's result so far (None: not made yet).

    Attributes:
        checkpoint: what the user passed (a path or ``reference:NAME``).
        options: the options, with a reference model's defaults filled in by the load stage.
        out: the bundle folder to write.
        threads: the thread count every runner is measured with.
        progress: the progress display: stage lines are the pipeline's, notes and bars a
            stage's.
        source: the checkpoint's path on disk.
        loaded: the loaded original.
        eval_set: labelled data the forward graphs are judged on (none of it calibrates).
        split: calibration data, apart from every row that judges a variant.
        generative: whether the generation stage runs.
        folder: the staging folder the bundle is written into.
        graph: the exported fp32 graph.
        broken: why the fp32 graph is too broken to optimise or time, or None.
        original: the original's outputs every variant is compared with.
        records: every variant measured so far, fp32 first.
        sweep: the batch/length sweep and the footprints.
        measurement: how the latency was measured (threads, CPU, inputs).
        generation: the generation stage's result.
        manifest: the written manifest.
    """

    checkpoint: str
    options: ConvertOptions
    out: Path
    threads: int
    progress: Progress
    source: Path | None = None
    loaded: LoadedModel | None = None
    eval_set: EvalSet | None = None
    split: DataSplit | None = None
    generative: bool = False
    folder: Path | None = None
    graph: ExportedGraph | None = None
    broken: str | None = None
    original: Original | None = None
    records: tuple[VariantRecord, ...] = ()
    sweep: SweepResult | None = None
    measurement: Mapping[str, Any] | None = None
    generation: GenerationResult | None = None
    manifest: Manifest | None = None

    def log(self, message: str) -> None:
        """A note under the current stage."""
        self.progress.note(message)

    @property
    def model(self) -> LoadedModel:
        """The loaded original (after the load stage)."""
        return _need(self.loaded, "the loaded model")

    @property
    def staging(self) -> Path:
        """The staging folder (inside the bundle stages)."""
        return _need(self.folder, "the staging folder")

    @property
    def exported(self) -> ExportedGraph:
        """The exported fp32 graph (after the export stage)."""
        return _need(self.graph, "the exported graph")

    @property
    def reference(self) -> Original:
        """The original's outputs (after the fp32 parity stage)."""
        return _need(self.original, "the original's outputs")

    @property
    def written(self) -> Manifest:
        """The manifest (after the write stage)."""
        return _need(self.manifest, "the manifest")
