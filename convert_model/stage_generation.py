"""The generation stage: export with past key/values, quantize per sub-graph, judge on text.

For a generative model (text2text-generation, text-generation) the bundle also gets the
graphs a generation loop runs (``generation/<variant>/``), the loop itself (``runtime/``,
numpy + onnxruntime only), and evidence: greedy and beam-search outputs compared token for
token with ``model.generate`` on the eval set (or the check inputs), the task metric on
labelled data, and time to first token and tokens/s against ``model.generate`` in one
interleaved run. Orchestration only: the export is in ``converters/export_generation.py``,
quantization in ``optimizers/``, measuring in ``benchmarks/generation.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.generation import (
    Generate,
    GenerationTimingConfig,
    TextScores,
    generate_all,
    identical_share,
    padded,
    score_text,
    stop_ids,
    time_generation,
    vacuous,
)
from convert_model.core.errors import OptimizationError, first_line, summary
from convert_model.core.hashing import sha256_file
from convert_model.core.quiet import quiet
from convert_model.stages import fuse_config_for
from converters.export_generation import (
    CONFIG_FILES,
    DECODER,
    DECODER_FIRST,
    DECODER_WITH_PAST,
    ENCODER_DECODER,
    GenerationGraphs,
    export_generation,
)
from converters.types import Inputs, LoadedModel

Log = Callable[[str], None]
FOLDER = "generation"
RUNTIME_FOLDER = "runtime"
BASELINE = "fp32"
DEFAULT_BEAMS = 4  # beams for the beam-search check when the model's config asks for greedy
TIE = 0.03  # tokens/s within 3% of the fastest: the more faithful variant wins
GENERATION_METRICS = ("token_agreement", "exact_match")
COULD_NOT_RUN = "could not run: "  # a variant that fails to load or run, not to agree
CHECK_FILE = "check.npz"  # prompts and the original's greedy tokens, for ``verify``
CHECK_PROMPTS = 16


@dataclass(frozen=True, kw_only=True)
class GenerationBudget:
    """Gates on generated text.

    Attributes:
        fp32_greedy_identical: share of greedy outputs of the fp32 graphs that must be
            token-identical to ``model.generate``.
        fp32_beam_identical: the same for the top beam.
        max_metric_drop: how far a quantized variant's task metric may fall below the
            original's (in the metric's units; 0.01 = 1 point of a 0-1 metric).
        min_identical_unlabelled: without labels there is no task metric; a quantized
            variant then needs this share of greedy outputs identical to the original's.
        min_beam_identical: a quantized variant's share of top beams identical to the
            original's, with or without labels.
    """

    fp32_greedy_identical: float = 1.0
    fp32_beam_identical: float = 0.98
    max_metric_drop: float = 0.01
    min_identical_unlabelled: float = 0.9
    min_beam_identical: float = 0.75  # quantized variants: top beams identical, labels or not

    def __post_init__(self) -> None:
        for name in ("fp32_greedy_identical", "fp32_beam_identical", "min_identical_unlabelled",
                     "min_beam_identical"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not self.max_metric_drop >= 0:
            raise ValueError(f"max_metric_drop must be >= 0, got {self.max_metric_drop}")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """A generation variant: which sub-graphs get dynamic int8."""

    name: str
    description: str
    quantize_roles: tuple[str, ...]  # empty: no int8
    fuse: bool = False  # transformer fusions first, in each sub-graph the optimizer takes
    per_channel: bool = True


_ALL_ROLES = ("encoder", "decoder", "decoder_first", "decoder_with_past")
RECIPES = (
    Recipe(name=BASELINE, description="fp32 export, as optimum-onnx wrote it", quantize_roles=()),
    Recipe(
        name="fp32-fused",
        description="fp32 with onnxruntime's transformer fusions in each sub-graph it takes",
        quantize_roles=(),
        fuse=True,
    ),
    Recipe(
        name="int8",
        description="fused where possible, then dynamic int8 (per-channel) in every sub-graph",
        quantize_roles=_ALL_ROLES,
        fuse=True,
    ),
    Recipe(
        name="int8-decoder",
        description="dynamic int8 in the decoder only; the encoder, run once per input, fused fp32",
        quantize_roles=("decoder", "decoder_first", "decoder_with_past"),
        fuse=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class GenerationVariant:
    """One set of generation graphs and what was measured on it."""

    name: str
    description: str
    files: Mapping[str, str]  # role -> path relative to the bundle
    sha256: Mapping[str, str]
    size_bytes: int
    precision: str
    recipe: Mapping[str, Any]
    greedy_identical: float | None = None
    beam_identical: float | None = None
    scores: TextScores | None = None
    latency: Mapping[str, Any] | None = None
    tokens_per_s_speedup: float | None = None
    ttft_speedup: float | None = None
    failures: tuple[str, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "name": self.name,
            "description": self.description,
            "status": "pass" if not self.failures else "fail",
            "reason": self.reason,
            "precision": self.precision,
            "files": dict(self.files),
            "sha256": dict(self.sha256),
            "size_bytes": self.size_bytes,
            "recipe": dict(self.recipe),
            "greedy_identical": self.greedy_identical,
            "beam_identical": self.beam_identical,
            "scores": self.scores.to_json() if self.scores else None,
            "latency": dict(self.latency) if self.latency else None,
            "tokens_per_s_speedup": self.tokens_per_s_speedup,
            "ttft_speedup": self.ttft_speedup,
            "failures": list(self.failures),
        }


@dataclass(frozen=True, kw_only=True)
class GenerationResult:
    """The generation stage's record, as it goes into the manifest's ``generation`` key."""

    split: Mapping[str, Any]
    examples: int
    labelled: bool
    metric: str | None
    num_beams: int
    budget: GenerationBudget
    original: Mapping[str, Any]
    variants: tuple[GenerationVariant, ...]
    recommended: str | None
    threads: int
    notes: tuple[str, ...] = field(default=())
    vacuous: bool = False  # the original generated nothing but padding/EOS

    @property
    def passed(self) -> bool:
        """Whether the fp32 graphs generate what the original generates, within budget."""
        fp32 = next(v for v in self.variants if v.name == BASELINE)
        return not fp32.failures and self.recommended is not None

    @property
    def failures(self) -> tuple[str, ...]:
        """The fp32 variant's failures, each prefixed with its name."""
        fp32 = next(v for v in self.variants if v.name == BASELINE)
        return tuple(f"generation {BASELINE}: {line}" for line in fp32.failures)

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "status": "pass" if self.passed else "fail",
            "split": dict(self.split),
            "runtime": f"{RUNTIME_FOLDER}/",
            "examples": self.examples,
            "labelled": self.labelled,
            "metric": self.metric,
            "num_beams": self.num_beams,
            "threads": self.threads,
            "budget": {
                "fp32_greedy_identical": self.budget.fp32_greedy_identical,
                "fp32_beam_identical": self.budget.fp32_beam_identical,
                "max_metric_drop": self.budget.max_metric_drop,
                "min_identical_unlabelled": self.budget.min_identical_unlabelled,
                "min_beam_identical": self.budget.min_beam_identical,
            },
            "original": dict(self.original),
            "variants": [v.to_json() for v in self.variants],
            "recommended": self.recommended,
            "notes": list(self.notes),
            "vacuous": self.vacuous,
        }


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


def bundle_generator(bundle: Path, variant: Mapping[str, Any],
                     threads: int) -> tuple[Generate, Any]:
    """The bundle's loop over one variant as the manifest's ``generation`` lists it."""
    files = {role: Path(path).name for role, path in variant["files"].items()}
    return ort_generator(bundle / FOLDER / variant["name"], files, bundle / FOLDER, threads)


def copy_runtime(bundle: Path) -> Path:
    """Copy the generation loop (``convert_model/runtime``) into ``bundle/runtime``."""
    from convert_model import runtime

    source = Path(runtime.__file__).parent
    target = bundle / RUNTIME_FOLDER
    target.mkdir()
    for path in sorted(source.glob("*.py")):
        shutil.copy2(path, target / path.name)
    return target


class _Fuser:
    """Fuses each exported graph once, however many recipes ask; results stay beside it.

    A graph the optimizer cannot take, or whose fused form onnxruntime's CPU provider cannot
    run, is handed back unchanged with the reason.
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self.done: dict[Path, tuple[Path, dict[str, Any]]] = {}

    def __call__(self, source: Path) -> tuple[Path, dict[str, Any]]:
        """The graph to use in place of ``source``, and the step to record."""
        from optimizers.fuse import fuse

        if source not in self.done:
            fused = source.with_name(f"fused-{source.name}")
            try:
                made = fuse(source, fused, self.config)
                _check_opens(fused, "the fused graph")
                self.done[source] = (fused, {"pass": "fuse", **made.details})
            except OptimizationError as e:
                fused.unlink(missing_ok=True)
                self.done[source] = (source, {"pass": "fuse", "skipped": str(e)})
        return self.done[source]


def build_variant(recipe: Recipe, graphs: GenerationGraphs, bundle: Path,
                  fuser: _Fuser | None = None) -> GenerationVariant:
    """Write ``recipe``'s graphs into ``bundle/generation/<name>/``.

    Rules, per sub-graph: fuse when the recipe asks, the optimizer takes the graph and
    onnxruntime's CPU provider runs the result (otherwise it stays as exported, and the
    error is recorded); then dynamic int8 when the recipe quantizes that role; else a copy.
    A merged decoder that a pass would change is rebuilt from its pair (``_process_pair``),
    or, when that fails, passed through as one graph.

    Raises:
        OptimizationError: when quantization fails, or a fused recipe fused nothing.
    """
    folder = bundle / FOLDER / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    steps: dict[str, list[Any]] = {}
    for role, name in graphs.files.items():
        target = folder / name
        steps[role] = []
        changes = recipe.fuse or role in recipe.quantize_roles
        if role == DECODER and graphs.unmerged and changes:
            try:
                _process_pair(recipe, graphs, target, fuser, steps[role])
                continue
            except Exception as e:  # noqa: BLE001  fall back to passes inside the If
                steps[role] = [{"pass": "merge_decoders", "skipped": summary(e)}]
        _process(recipe, role, graphs.path(role), target, fuser, steps[role])
    if recipe.fuse and not recipe.quantize_roles and not any(
        step["pass"] == "fuse" and "skipped" not in step
        for role_steps in steps.values() for step in role_steps
    ):
        raise OptimizationError("the transformer optimizer fused no sub-graph")
    files = {role: f"{FOLDER}/{recipe.name}/{name}" for role, name in graphs.files.items()}
    return GenerationVariant(
        name=recipe.name,
        description=recipe.description,
        files=files,
        sha256={role: sha256_file(bundle / p) for role, p in files.items()},
        size_bytes=sum((bundle / p).stat().st_size for p in files.values()),
        precision="int8" if recipe.quantize_roles else "fp32",
        recipe={"quantize_roles": list(recipe.quantize_roles), "fuse": recipe.fuse,
                "per_channel": recipe.per_channel, "steps": steps},
    )


def _process(recipe: Recipe, role: str, source: Path, target: Path, fuser: _Fuser | None,
             steps: list[Any]) -> None:
    """One graph through the recipe: fuse (when it takes and runs on CPU), int8, or a copy."""
    from optimizers.quantize_dynamic import DynamicQuantConfig, quantize_dynamic

    if recipe.fuse and fuser is not None:
        source, step = fuser(source)
        steps.append(step)
    if role in recipe.quantize_roles:
        made = quantize_dynamic(source, target, DynamicQuantConfig(per_channel=recipe.per_channel))
        steps.append({"pass": "quantize_dynamic", **made.details})
    elif source != target:
        shutil.copy2(source, target)


def _process_pair(recipe: Recipe, graphs: GenerationGraphs, target: Path,
                  fuser: _Fuser | None, steps: list[Any]) -> None:
    """The merged decoder rebuilt: each of the pair through the recipe, then merged again.

    onnxruntime's transformer optimizer cannot take the merged graph's If at all, and its
    quantizer, inside the If, can write a graph that no longer loads (Marian); the pair
    are plain graphs. optimum's ``merge_decoders`` shares what the two have in common.
    """
    from optimum.onnx import merge_decoders

    parts = []
    for role in (DECODER_FIRST, DECODER_WITH_PAST):
        part = target.with_name(f".{role}-{target.name}")
        part_steps: list[Any] = []
        _process(recipe, DECODER, graphs.folder / graphs.unmerged[role], part, fuser,
                 part_steps)
        steps.extend({"graph": role, **step} for step in part_steps)
        parts.append(part)
    try:
        with quiet():
            merge_decoders(parts[0], parts[1], save_path=target, strict=False)
        _check_opens(target, "the merged decoder")
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    steps.append({"pass": "merge_decoders"})


def _check_opens(path: Path, what: str) -> None:
    """OptimizationError unless onnxruntime's CPU provider can run ``path``.

    The transformer optimizer can emit contrib ops with no CPU kernel (T5's
    RelativePositionBias); such a graph is no variant for CPU serving.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # FATAL only: onnxruntime's log lines stay off the console
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001  onnxruntime's errors are untyped
        raise OptimizationError(f"{what} does not run on CPU: {first_line(e)}") from e


def run_generation_stage(
    loaded: LoadedModel,
    bundle: Path,
    *,
    eval_data: Path | None,
    metric: str | None,
    budget: GenerationBudget,
    threads: int,
    opset: int,
    batch_size: int,
    timing: GenerationTimingConfig,
    quantize: bool = True,
    log: Log,
    on_round: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Export, build the variants, measure them against ``model.generate``, recommend one.

    ``quantize`` False builds the exported fp32 graphs only (``--precision fp32``).
    """
    model = loaded.hf_model
    with tempfile.TemporaryDirectory(prefix="convert-model-generation-") as scratch:
        graphs = export_generation(model, Path(scratch), task=str(loaded.task), opset=opset,
                                   keep_unmerged=True)
        (bundle / FOLDER).mkdir(parents=True, exist_ok=True)
        for name in CONFIG_FILES:  # one copy for every variant, beside their folders
            if (graphs.folder / name).is_file():
                shutil.copy2(graphs.folder / name, bundle / FOLDER / name)
        variants, notes = _build_all(graphs, bundle, loaded, quantize, log)
    return _measure(loaded, bundle, graphs, variants, notes, eval_data=eval_data, metric=metric,
                    budget=budget, threads=threads, batch_size=batch_size, timing=timing,
                    log=log, on_round=on_round)


def _build_all(graphs: GenerationGraphs, bundle: Path, loaded: LoadedModel, quantize: bool,
               log: Log) -> tuple[list[GenerationVariant], list[str]]:
    log(f"generation export: {graphs.kind}, graphs {', '.join(graphs.files.values())}"
        + (" (merged decoder)" if graphs.merged else ""))
    copy_runtime(bundle)
    variants: list[GenerationVariant] = []
    notes: list[str] = []
    fuser = _Fuser(fuse_config_for(loaded))
    for recipe in RECIPES:
        if recipe.quantize_roles and not quantize:
            continue
        if recipe.quantize_roles and not set(recipe.quantize_roles) & set(graphs.files):
            continue
        if recipe.name == "int8-decoder" and "encoder" not in graphs.files:
            continue  # decoder-only: the same graphs as int8
        try:
            variants.append(build_variant(recipe, graphs, bundle, fuser))
        except OptimizationError as e:
            notes.append(f"{recipe.name}: not built ({e})")
            log(f"generation {recipe.name}: not built ({e})")
    return variants, notes


def _measure(
    loaded: LoadedModel,
    bundle: Path,
    graphs: GenerationGraphs,
    variants: list[GenerationVariant],
    notes: list[str],
    *,
    eval_data: Path | None,
    metric: str | None,
    budget: GenerationBudget,
    threads: int,
    batch_size: int,
    timing: GenerationTimingConfig,
    log: Log,
    on_round: Callable[[int], None] | None,
) -> GenerationResult:
    model = loaded.hf_model
    prompts = prompts_for(loaded, eval_data, metric)
    original = torch_generator(model, graphs.kind)
    runners = {}
    for variant in list(variants):
        try:
            runners[variant.name] = ort_generator(
                bundle / FOLDER / variant.name, graphs.files, bundle / FOLDER, threads
            )
        except Exception as e:  # noqa: BLE001  a variant onnxruntime cannot open is dropped
            if variant.name == BASELINE:
                raise
            variants.remove(variant)
            shutil.rmtree(bundle / FOLDER / variant.name)
            notes.append(f"{variant.name}: {COULD_NOT_RUN}onnxruntime cannot open it "
                         f"({first_line(e)})")
            log(f"generation {variant.name}: {COULD_NOT_RUN}onnxruntime cannot open it")
    settings = next(iter(runners.values()))[1].settings
    pad = settings.pad_token_id
    num_beams = settings.num_beams if (settings.num_beams or 1) > 1 else DEFAULT_BEAMS
    decode = _decoder_for(loaded)

    log(f"generating for {prompts.size} examples: greedy and {num_beams} beams")
    reference = {
        beams: generate_all(original, prompts.inputs, num_beams=beams, batch_size=batch_size,
                            pad_token_id=pad)
        for beams in (1, num_beams)
    }
    original_scores = (
        score_text(reference[1], prompts.labels, decode) if prompts.labels is not None else None
    )
    save_check(bundle / FOLDER / CHECK_FILE, prompts, reference[1][:CHECK_PROMPTS])
    empty = vacuous(reference[1], stop_ids(pad, settings.eos_token_id))
    if empty:
        log("warning: the original generates only padding/end-of-sequence tokens for every "
            "prompt; token identity with it would prove nothing")
    measured, broken = [], []
    for variant in variants:
        generate = runners[variant.name][0]
        try:
            greedy = generate_all(generate, prompts.inputs, num_beams=1,
                                  batch_size=batch_size, pad_token_id=pad)
            beam = generate_all(generate, prompts.inputs, num_beams=num_beams,
                                batch_size=batch_size, pad_token_id=pad)
        except Exception as e:  # noqa: BLE001  a graph that fails mid-loop is a finding
            if variant.name == BASELINE:
                raise
            line = f"{COULD_NOT_RUN}{type(e).__name__}: {first_line(e)}"
            log(f"generation {variant.name}: {line}")
            broken.append(replace(variant, failures=(line,)))
            continue
        scores = score_text(greedy, prompts.labels, decode) if prompts.labels is not None else None
        measured.append(replace(
            variant,
            greedy_identical=identical_share(reference[1], greedy),
            beam_identical=identical_share(reference[num_beams], beam),
            scores=scores,
        ))
        log(f"generation {variant.name}: greedy identical {measured[-1].greedy_identical:.1%}, "
            f"beam identical {measured[-1].beam_identical:.1%}"
            + (f", {prompts.metric} {getattr(scores, str(prompts.metric)):.4f}" if scores else ""))
    judged = [_judge(v, budget, original_scores, prompts.metric, empty) for v in measured]

    log(f"timing generation: {timing.prompts} prompts x {timing.rounds} rounds, batch 1")
    latency = time_generation(
        {"original": original} | {v.name: runners[v.name][0] for v in judged},
        prompts.inputs, timing, pad_token_id=pad, on_round=on_round,
    )
    base = latency["original"]
    timed = [
        replace(
            v,
            latency=latency[v.name].to_json(),
            tokens_per_s_speedup=_ratio(latency[v.name].tokens_per_s, base.tokens_per_s),
            ttft_speedup=_ratio(base.ttft_p50_ms, latency[v.name].ttft_p50_ms),
        )
        for v in judged
    ]
    chosen, decided = _choose(timed + broken)
    return GenerationResult(
        split=graphs.to_json(),
        examples=prompts.size,
        labelled=prompts.labels is not None,
        metric=prompts.metric,
        num_beams=num_beams,
        budget=budget,
        original={
            "scores": original_scores.to_json() if original_scores else None,
            "latency": base.to_json(),
        },
        variants=tuple(decided),
        recommended=chosen,
        threads=threads,
        notes=tuple(notes),
        vacuous=empty,
    )


def save_check(path: Path, prompts: Prompts, greedy: Sequence[np.ndarray]) -> None:
    """Store the first prompts and the original's greedy tokens (-1 padded) for ``verify``."""
    count = len(greedy)
    arrays: dict[str, Any] = {name: value[:count] for name, value in prompts.inputs.items()}
    arrays["greedy"] = padded(greedy, fill=-1)
    np.savez(path, **arrays)


def check_bundle(bundle: Path, generation: Mapping[str, Any], threads: int = 1) -> list[str]:
    """Re-run the fp32 generation graphs on the stored prompts; list every row that differs."""
    fp32 = next((v for v in generation["variants"] if v["name"] == BASELINE), None)
    if fp32 is None:
        return [f"generation: no {BASELINE} variant in the manifest"]
    with np.load(bundle / FOLDER / CHECK_FILE, allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    expected = stored.pop("greedy")
    generate, generator = bundle_generator(bundle, fp32, threads)
    rows = generate_all(generate, stored, num_beams=1, batch_size=len(expected),
                        pad_token_id=generator.settings.pad_token_id)
    problems = []
    for i, (row, want) in enumerate(zip(rows, expected, strict=True)):
        if not np.array_equal(row, want[want != -1]):
            problems.append(f"generation {BASELINE}: prompt {i} generates {row.tolist()}, "
                            f"the original generated {want[want != -1].tolist()}")
    return problems


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


def _decoder_for(loaded: LoadedModel) -> Callable[[np.ndarray], str] | None:
    """The tokenizer's decode (special tokens skipped), when the checkpoint has a tokenizer."""
    from converters.hf_folder import has_tokenizer, load_tokenizer

    folder = Path(loaded.source)
    if not folder.is_dir() or not has_tokenizer(folder):
        return None
    tokenizer = load_tokenizer(folder)
    return lambda ids: str(tokenizer.decode(ids.tolist(), skip_special_tokens=True))


def _judge(variant: GenerationVariant, budget: GenerationBudget,
           original: TextScores | None, metric: str | None,
           empty: bool = False) -> GenerationVariant:
    failures: list[str] = []
    greedy, beam = variant.greedy_identical or 0.0, variant.beam_identical or 0.0
    if empty:
        failures.append("the original generated only padding/EOS: token identity is vacuous")
    if variant.name != BASELINE and beam < budget.min_beam_identical:
        failures.append(f"top beam identical {beam:.1%} < {budget.min_beam_identical:.0%}")
    if variant.name == BASELINE:
        if greedy < budget.fp32_greedy_identical:
            failures.append(f"greedy outputs identical {greedy:.1%} < "
                            f"{budget.fp32_greedy_identical:.0%}")
        if beam < budget.fp32_beam_identical:
            failures.append(f"top beam identical {beam:.1%} < {budget.fp32_beam_identical:.0%}")
    elif original is not None and variant.scores is not None and metric is not None:
        drop = getattr(original, metric) - getattr(variant.scores, metric)
        if drop > budget.max_metric_drop:
            failures.append(f"{metric} dropped {drop:.4f} > {budget.max_metric_drop}")
    elif greedy < budget.min_identical_unlabelled:
        failures.append(f"greedy outputs identical {greedy:.1%} < "
                        f"{budget.min_identical_unlabelled:.0%} (no labels for a task metric)")
    return replace(variant, failures=tuple(failures))


def _choose(variants: Sequence[GenerationVariant]) -> tuple[str | None, list[GenerationVariant]]:
    """Fastest tokens/s within budget; within 3% of it the most faithful; never below fp32."""
    fp32 = next(v for v in variants if v.name == BASELINE)
    if fp32.failures:
        return None, [replace(v, reason="not chosen: the fp32 graphs fail generation parity")
                      for v in variants]
    speed = {v.name: (v.latency or {}).get("tokens_per_s", 0.0) for v in variants}
    passing = [v for v in variants if not v.failures and speed[v.name] >= speed[BASELINE]]
    fastest = max(speed[v.name] for v in passing)
    close = [v for v in passing if speed[v.name] >= fastest * (1 - TIE)]
    chosen = max(close, key=lambda v: (v.greedy_identical or 0.0, speed[v.name]))
    decided = []
    for v in variants:
        if v is chosen:
            reason = f"recommended: {speed[v.name]:.1f} tokens/s, fastest within budget"
        elif v.failures and v.failures[0].startswith(COULD_NOT_RUN):
            reason = "not chosen: " + v.failures[0]
        elif v.failures:
            reason = "not chosen: outside the accuracy budget: " + "; ".join(v.failures)
        elif speed[v.name] < speed[BASELINE]:
            reason = f"not chosen: slower than fp32 ({speed[v.name]:.1f} tokens/s)"
        else:
            reason = f"not chosen: {speed[v.name]:.1f} tokens/s vs {speed[chosen.name]:.1f}"
        decided.append(replace(v, reason=reason))
    return chosen.name, decided
