"""The pipeline: load, export, optimise, measure, decide, write. Stage logic lives elsewhere."""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.generation import GenerationTimingConfig
from benchmarks.latency import LatencyConfig
from benchmarks.parity import DEFAULT_BUDGETS, OutputParity, ParityBudget
from benchmarks.sweep import SweepConfig, SweepResult
from convert_model.bundle import staging as bundle
from convert_model.bundle.manifest import (
    MANIFEST_NAME,
    REFERENCE_OUTPUTS,
    SAMPLE_INPUTS,
    Manifest,
    VariantRecord,
    write_manifest,
)
from convert_model.core.errors import ParityError, UsageError
from convert_model.core.hashing import sha256_file, sha256_files
from convert_model.core.quiet import quiet
from convert_model.progress import Progress

TARGETS = ("onnx",)
PRECISIONS = ("auto", "fp32", "int8", "fp16")
DEVICES = ("cpu",)
REFERENCE_PREFIX = "reference:"
TOOLCHAIN = (
    "convert-model",
    "torch",
    "transformers",
    "onnx",
    "onnxruntime",
    "optimum-onnx",
    "optimum",
    "onnxscript",
    "numpy",
)
BASELINE = "fp32"
STAGES = 6
DEFAULT_SWEEP = SweepConfig()
"""The sweep when none was asked for; the sweep stage may pick one per model (trees: batch
1 and 1,000). Compared by identity: a config the user passes is used as given."""


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """Everything ``convert`` takes besides the checkpoint; validated on construction."""

    target: str = "onnx"
    out: Path | None = None
    precision: str = "auto"
    preset: str | None = None
    device: str = "cpu"
    task: str | None = None
    input_spec: str | None = None
    model_class: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False
    trust_pickle: bool = False
    notebook_object: str | None = None
    notebook_inputs: str | None = None
    notebook_timeout: float = 300.0
    force: bool = False
    opset: int = 18
    strategies: tuple[str, ...] | None = None
    budgets: Mapping[str, ParityBudget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    eval_data: Path | None = None
    metric: str | None = None
    metric_output: str | None = None
    eval_is_default: bool = False  # the eval set came with a reference model, not the user
    sample_data: Path | None = None
    threads: int | None = None
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    sweep: SweepConfig | None = DEFAULT_SWEEP  # None: no sweep
    batch_size: int = 16
    int8_budget_s: float = 60.0  # wall-time budget of the optimise stage, int8 search included
    generation: bool = True  # generative tasks: also export for a generation loop, and judge it
    generation_timing: GenerationTimingConfig = field(default_factory=GenerationTimingConfig)
    external_data_threshold: int = 2 * 1024**3
    seed: int = 0

    def __post_init__(self) -> None:
        from converters.export import ExportConfig
        from optimizers.presets import PRESETS

        for name, value, allowed in (
            ("target", self.target, TARGETS),
            ("precision", self.precision, PRECISIONS),
            ("device", self.device, DEVICES),
        ):
            if value not in allowed:
                raise UsageError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.preset is not None and self.preset not in PRESETS:
            raise UsageError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        try:
            ExportConfig(opset=self.opset, strategies=self.strategies)
        except ValueError as e:
            raise UsageError(str(e)) from e
        if not isinstance(self.model_kwargs, Mapping):
            raise UsageError(f"--model-kwargs must be a JSON object, got {self.model_kwargs!r}")
        missing = sorted({"fp32", "int8", "fp16"} - set(self.budgets))
        if missing:
            raise UsageError(f"budgets must cover every precision; missing {missing}")
        if self.eval_data is not None and not self.metric:
            raise UsageError("--eval-data needs --metric (accuracy, spearman, micro_f1, ...)")
        if not self.notebook_timeout > 0:
            raise UsageError(f"--notebook-timeout must be > 0 seconds, got {self.notebook_timeout}")
        if not self.int8_budget_s > 0:
            raise UsageError(f"--int8-budget must be > 0 seconds, got {self.int8_budget_s}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")


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
        fp32 = self.manifest.variant(BASELINE)
        lines = tuple(f"{BASELINE}: {line}" for line in fp32.failures)
        if not lines and self.manifest.recommended is None:
            lines = tuple(f"{v.name}: {v.reason}" for v in self.manifest.variants)
        generation = self.manifest.generation or {}
        for variant in generation.get("variants", ()):
            if variant["name"] == BASELINE:
                lines += tuple(f"generation {BASELINE}: {line}" for line in variant["failures"])
        return lines


def toolchain_versions() -> dict[str, str]:
    """Versions of the packages that shaped the bundle."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in TOOLCHAIN:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _resolve_reference(
    checkpoint: str, options: ConvertOptions, log: Callable[[str], None]
) -> tuple[Path, ConvertOptions]:
    """Build ``reference:NAME`` (cached) and fill options it defines that the user left unset."""
    import reference_models

    try:
        built = reference_models.build(checkpoint[len(REFERENCE_PREFIX) :], progress=log)
    except reference_models.ReferenceModelError as e:
        raise UsageError(str(e)) from e
    defaults = dict(built.options)
    updates: dict[str, Any] = {}
    for key in ("task", "input_spec", "model_class"):
        if key in defaults and getattr(options, key) is None:
            updates[key] = defaults[key]
    if "model_kwargs" in defaults and not options.model_kwargs:
        updates["model_kwargs"] = json.loads(defaults["model_kwargs"])
    if options.eval_data is None:
        updates.update(
            eval_data=built.eval_data,
            metric=built.model.metric,
            metric_output=built.model.metric_output,
            eval_is_default=True,
        )
    return built.checkpoint, replace(options, **updates)


def default_out(checkpoint: str) -> Path:
    """``./NAME-onnx`` in the working directory."""
    name = (
        checkpoint[len(REFERENCE_PREFIX) :]
        if checkpoint.startswith(REFERENCE_PREFIX)
        else Path(checkpoint).name.split(".")[0] or "model"
    )
    return Path.cwd() / f"{name}-onnx"


def convert(
    checkpoint: str | Path,
    options: ConvertOptions | None = None,
    *,
    progress: Progress | None = None,
    **kwargs: Any,
) -> ConvertResult:
    """Convert ``checkpoint`` to an ONNX bundle with measured parity and speed.

    Args:
        checkpoint: a path in any supported form, or ``reference:NAME``.
        options: a ConvertOptions; or pass its fields as keyword arguments.
        progress: where progress lines go; default prints to stderr.
        **kwargs: ConvertOptions fields, when ``options`` is not given.

    Returns:
        The written bundle. When the fp32 graph fails parity, or no variant qualifies, the
        bundle is still written, marked failed, and ParityError is raised with ``.result``
        set and every failure listed.
    """
    from convert_model.core.threads import usable_threads
    from converters.export import ExportConfig, export
    from converters.forms import detect_form
    from converters.input_spec import parse_input_spec
    from converters.registry import LoadOptions, loader_for

    if options is None:
        fields: dict[str, Any] = {
            k: Path(v) if k in ("out", "eval_data", "sample_data") and v is not None else v
            for k, v in kwargs.items()
        }
        options = ConvertOptions(**fields)
    elif kwargs:
        raise UsageError("pass either options or keyword arguments, not both")
    progress = progress or Progress(total=STAGES)
    text = str(checkpoint)
    out = Path(options.out) if options.out is not None else default_out(text)
    threads = options.threads or usable_threads()

    with progress.stage(f"load {text}"):
        if text.startswith(REFERENCE_PREFIX):
            path, options = _resolve_reference(text, options, progress.note)
        else:
            path = Path(text)
        form = detect_form(path)
        progress.note(f"form: {form}")
        load_options = LoadOptions(
            task=options.task,
            input_spec=parse_input_spec(options.input_spec) if options.input_spec else None,
            model_class=options.model_class,
            model_kwargs=options.model_kwargs,
            trust_remote_code=options.trust_remote_code,
            trust_pickle=options.trust_pickle,
            notebook_object=options.notebook_object,
            notebook_inputs=options.notebook_inputs,
            notebook_timeout=options.notebook_timeout,
            input_spec_text=options.input_spec,
            seed=options.seed,
        )
        with quiet():
            loaded = loader_for(form)(path, form, load_options)
        progress.note(
            f"model: {loaded.model_type}, task: {loaded.task or '-'}, "
            f"inputs: {', '.join(loaded.input_names)}"
        )
        for note in loaded.notes:
            progress.note(note)
        eval_set = _eval_set(options, loaded, progress.note)
        generative = options.generation and _generates(loaded)
        if generative:
            progress.total = STAGES + 1

    with bundle.staging(out, options.force) as staging:
        with progress.stage("export to ONNX"):
            graph = export(
                loaded,
                staging,
                ExportConfig(
                    opset=options.opset,
                    strategies=options.strategies,
                    external_data_threshold=options.external_data_threshold,
                ),
                log=progress.note,
            )
            progress.note(f"exported with {graph.strategy}, opset {graph.opset}")
        from convert_model import stages

        with progress.stage("check fp32 parity with the original"):
            if loaded.framework == "torch":  # tree libraries and ONNX sources need no torch
                stages.set_torch_threads(threads)
            original = stages.measure_original(loaded, eval_set, options.batch_size)
            fp32 = stages.fp32_record(
                graph.path, staging, original, options, threads, loaded.framework
            )
            for record in _worst(fp32.parity):
                progress.note(_describe(record))
            if original.eval_score is not None and eval_set is not None:
                progress.note(
                    f"task metric {eval_set.metric}: original {original.eval_score:.4f}, "
                    f"fp32 {fp32.task_metric:.4f} ({eval_set.size} examples)"
                )
        with progress.stage("optimise and quantize"):
            optimise_started = time.monotonic()  # the int8 search's budget covers the stage
            records = [fp32] + stages.build_variants(
                graph.path, staging, loaded, original, options, threads, progress.note
            )
            records = stages.recover_int8(
                records, graph.path, staging, loaded, original, options, threads, progress.note,
                started=optimise_started,
            )
        with progress.stage(f"measure latency ({threads} threads) and choose"):
            from convert_model.stage_sweep import measure_sweep

            sweep = measure_sweep(
                records, staging, loaded, graph.inputs, original, options, threads, progress
            )
            with progress.bar(options.latency.rounds, "latency rounds") as bar:
                records, measurement = stages.time_and_choose(
                    records, staging, loaded, original, eval_set, options, threads,
                    progress.note, on_round=lambda _: bar.advance(),
                )
        generation = None
        if generative:
            with progress.stage("generation: export with past key/values, check vs generate"):
                generation = _generation(loaded, staging, options, threads, progress)
        with progress.stage(f"write bundle {out}"):
            manifest = _write(
                staging, path, loaded, graph, records, original.references, measurement, options,
                sweep, generation,
            )
    result = ConvertResult(out=out, manifest=manifest)
    if not result.passed:
        error = ParityError(f"parity gate failed for {out}", result.failures)
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result


def _generates(loaded: Any) -> bool:
    from converters.export_generation import is_generative

    return loaded.hf_model is not None and is_generative(loaded.task)


def _generation(
    loaded: Any, staging: Path, options: ConvertOptions, threads: int, progress: Progress
) -> dict[str, Any]:
    from convert_model.stage_generation import GenerationBudget, run_generation_stage

    drop = options.budgets["int8"].max_metric_drop
    budget = GenerationBudget() if drop is None else GenerationBudget(max_metric_drop=drop)
    with progress.bar(options.generation_timing.rounds, "generation timing rounds") as bar:
        result = run_generation_stage(
            loaded,
            staging,
            eval_data=options.eval_data,
            metric=options.metric,
            budget=budget,
            threads=threads,
            opset=options.opset,
            batch_size=options.batch_size,
            timing=options.generation_timing,
            quantize=options.precision in ("auto", "int8"),
            log=progress.note,
            on_round=lambda _: bar.advance(),
        )
    for variant in result.variants:
        progress.note(f"generation {variant.name}: {variant.reason}")
    return result.to_json()


def _eval_set(options: ConvertOptions, loaded: Any, log: Callable[[str], None]) -> Any:
    from benchmarks.evaluate import load_eval_set

    input_names, output_names = loaded.input_names, loaded.output_names
    dtypes = {name: value.dtype for name, value in loaded.examples[0].items()}
    features = (loaded.input_schema or {}).get("features")

    if options.eval_data is None or options.metric is None:
        return None
    output = options.metric_output or output_names[0]
    if output not in output_names and _generates(loaded):
        log(f"eval set read by the generation checks: its {options.metric} metric reads "
            f"generated {output!r}")
        return None
    if output not in output_names and options.eval_is_default:
        # A generation metric reads generated sequences, which one forward pass does not make.
        log(f"eval set skipped: its {options.metric} metric reads {output!r}, "
            f"which this graph does not output ({', '.join(output_names)})")
        return None
    if output not in output_names:
        raise UsageError(
            f"--metric-output {output!r} is not a model output; outputs: {', '.join(output_names)}"
        )
    return load_eval_set(options.eval_data, options.metric, output, input_names, dtypes,
                         features)


def _worst(records: Sequence[OutputParity]) -> list[OutputParity]:
    """Per output name, the record with the largest abs diff."""
    worst: dict[str, OutputParity] = {}
    for r in records:
        if r.name not in worst or r.max_abs_diff > worst[r.name].max_abs_diff:
            worst[r.name] = r
    return list(worst.values())


def _describe(r: OutputParity) -> str:
    parts = [f"{r.name}: max abs diff {r.max_abs_diff:.2e}"]
    if r.min_cosine is not None:
        parts.append(f"min cosine {r.min_cosine:.6f}")
    if r.top1_agreement is not None:
        parts.append(f"top-1 agreement {r.top1_agreement:.1%}")
    return ", ".join(parts)


def _save_npz(path: Path, sets: Sequence[Mapping[str, np.ndarray]]) -> None:
    arrays: dict[str, Any] = {
        f"{i}/{name}": value for i, s in enumerate(sets) for name, value in s.items()
    }
    np.savez(path, **arrays)


def _write(
    staging: Path,
    source: Path,
    loaded: Any,
    graph: Any,
    records: Sequence[VariantRecord],
    references: Sequence[Mapping[str, np.ndarray]],
    measurement: Mapping[str, Any],
    options: ConvertOptions,
    sweep: SweepResult | None = None,
    generation: Mapping[str, Any] | None = None,
) -> Manifest:
    for file in loaded.files_to_copy:
        shutil.copy2(file, staging / file.name)
    _save_npz(staging / SAMPLE_INPUTS, loaded.examples)
    _save_npz(staging / REFERENCE_OUTPUTS, references)
    root = source if source.is_dir() else source.parent
    source_sha, source_files = sha256_files(loaded.hashed_files, root)
    recommended = next((r.name for r in records if r.reason.startswith("recommended")), None)
    manifest = Manifest(
        convert_model_version=toolchain_versions()["convert-model"],
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        source={
            "path": str(source.resolve()),
            "form": str(loaded.form),
            "sha256": source_sha,
            "files": source_files,
        },
        toolchain=toolchain_versions(),
        task=loaded.task,
        model_type=loaded.model_type,
        export={
            "strategy": graph.strategy,
            "attempts": [a.to_json() for a in graph.attempts],
            "opset": graph.opset,
            "external_data": graph.external_data,
            "options": {"opset": options.opset, "dynamic": True},
        },
        inputs=tuple(t.to_json() for t in graph.inputs),
        outputs=tuple(t.to_json() for t in graph.outputs),
        reference=_reference_label(loaded),
        variants=tuple(records),
        recommended=recommended,
        files={},  # filled once the reports are written: every file is hashed once
        measurement=measurement,
        input_schema=loaded.input_schema,
        notes=loaded.notes,
        generation=generation,
    )
    # The reports go into the bundle too, so they are hashed before the manifest is written.
    from benchmarks.report import write_reports
    from convert_model.bundle.model_card import write_model_card

    report = write_reports(staging, manifest, sweep)
    write_model_card(staging, report)
    manifest = replace(manifest, files=_hash_files(staging))
    write_manifest(staging, manifest)
    return manifest


def _reference_label(loaded: Any) -> str:
    """What every variant is compared with and timed against, as the report names it."""
    from converters.export_tabular import TABULAR

    if loaded.module is None:
        return "source ONNX graph (onnxruntime)"
    if loaded.framework in TABULAR:
        return f"original model ({loaded.framework} predict)"
    return "original model (PyTorch eager)"


def _hash_files(staging: Path) -> dict[str, str]:
    """SHA-256 of every file in the bundle but the manifest, by relative path."""
    return {
        str(p.relative_to(staging)): sha256_file(p)
        for p in sorted(staging.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
