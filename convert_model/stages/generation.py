"""Stage 6 (generative models): export with past key/values, build, judge and time the loop.

The bundle also gets the graphs a generation loop runs (``generation/<variant>/``), the
loop itself (``runtime/``), and evidence: greedy and beam-search outputs compared token for
token with ``model.generate`` on the eval set (or the check inputs), the task metric on
labelled data, and time to first token and tokens/s against ``model.generate`` in one
interleaved run. Orchestration only: the export is in ``converters/export_generation.py``,
the recipes and passes in ``optimizers/generation.py``, measuring in ``benchmarks/``, the
choice in ``optimizers/select.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.generation import generate_all, identical_share, score_text, stop_ids, vacuous
from benchmarks.generators import generation_failures, ort_generator, prompts_for, torch_generator
from convert_model.bundle.generation_files import FOLDER, copy_runtime, save_check
from convert_model.bundle.manifest import GenerationResult, VariantRecord
from convert_model.core.errors import OptimizationError, summary
from convert_model.core.hashing import sha256_files
from convert_model.core.names import BASELINE
from convert_model.stages.preparation import fuse_config_for
from convert_model.state import ConversionState
from converters.export_generation import CONFIG_FILES, GenerationGraphs, export_generation
from converters.types import LoadedModel
from optimizers.generation import GENERATION_RECIPES, Fuser, build_generation
from optimizers.select import COULD_NOT_RUN

DEFAULT_BEAMS = 4  # beams for the beam-search check when the model's config asks for greedy


def run(state: ConversionState) -> ConversionState:
    """The generation graphs, their parity with ``model.generate``, and the recommended one.

    Under ``--precision fp32`` only the exported fp32 graphs are built.
    """
    quantize = state.options.precision in ("auto", "int8")
    with tempfile.TemporaryDirectory(prefix="convert-model-generation-") as scratch:
        graphs = export_generation(state.model.hf_model, Path(scratch), task=str(state.model.task),
                                   opset=state.options.export.opset, keep_unmerged=True)
        (state.staging / FOLDER).mkdir(parents=True, exist_ok=True)
        for name in CONFIG_FILES:  # one copy for every variant, beside their folders
            if (graphs.folder / name).is_file():
                shutil.copy2(graphs.folder / name, state.staging / FOLDER / name)
        variants, notes = _build_all(state, graphs, quantize)
    result = _measure(state, graphs, variants, notes)
    for variant in result.variants:
        state.log(f"generation {variant.name}: {variant.reason}")
    return replace(state, generation=result)


def _build_all(state: ConversionState, graphs: GenerationGraphs,
               quantize: bool) -> tuple[list[VariantRecord], list[str]]:
    from converters.export_generation import merge_decoder_pair

    bundle = state.staging
    state.log(f"generation export: {graphs.kind}, graphs {', '.join(graphs.files.values())}"
              + (" (merged decoder)" if graphs.merged else ""))
    copy_runtime(bundle)
    sources = {role: graphs.path(role) for role in graphs.files}
    pair = {role: graphs.folder / name for role, name in graphs.unmerged.items()}
    fuser = Fuser(fuse_config_for(state.model))
    variants: list[VariantRecord] = []
    notes: list[str] = []
    built_as: dict[frozenset[tuple[str, str]], str] = {}
    for recipe in GENERATION_RECIPES:
        if recipe.precision == "int8" and (not quantize or not recipe.quantizes(sources)):
            continue
        # Over the roles this export has, two recipes can name the same presets
        # (int8-decoder is int8 for a decoder-only model): build the graphs once.
        same = frozenset((r, p) for r, p in recipe.presets.items() if r in sources)
        if same in built_as:
            continue
        built_as[same] = recipe.name
        try:
            built = build_generation(recipe, sources, bundle / FOLDER / recipe.name, fuser,
                                     pair=pair, merge=merge_decoder_pair)
        except OptimizationError as e:
            notes.append(f"{recipe.name}: not built ({e})")
            state.log(f"generation {recipe.name}: not built ({e})")
            continue
        files = {role: str(path.relative_to(bundle)) for role, path in built.files.items()}
        digest, each = sha256_files(built.files.values(), bundle)
        variants.append(VariantRecord(
            name=recipe.name, description=recipe.description, file=f"{FOLDER}/{recipe.name}",
            sha256=digest, files=files, precision=recipe.precision, device="cpu",
            budget=state.options.budgets[recipe.precision], parity=(), failures=(),
            size_bytes=sum(p.stat().st_size for p in built.files.values()),
            recipe=({"presets": dict(recipe.presets), "steps": built.steps},),
            details={"sha256": {role: each[path] for role, path in files.items()}},
        ))
    return variants, notes


def _measure(state: ConversionState, graphs: GenerationGraphs, variants: list[VariantRecord],
             notes: list[str]) -> GenerationResult:
    options, loaded, bundle, threads = state.options, state.model, state.staging, state.threads
    batch_size, timing = options.eval.batch_size, options.generation.timing
    prompts = prompts_for(loaded, options.eval.data, options.eval.metric)
    original = torch_generator(loaded.hf_model, graphs.kind)
    runners = {}
    for variant in list(variants):
        try:
            runners[variant.name] = ort_generator(
                bundle / variant.file, graphs.files, bundle / FOLDER, threads)
        except Exception as e:  # a variant onnxruntime cannot open is dropped, and said so
            if variant.name == BASELINE:
                raise
            variants.remove(variant)
            shutil.rmtree(bundle / variant.file)
            notes.append(f"{variant.name}: {COULD_NOT_RUN}onnxruntime cannot open it "
                         f"({summary(e)})")
            state.log(f"generation {variant.name}: {COULD_NOT_RUN}onnxruntime cannot open it")
    settings = next(iter(runners.values()))[1].settings
    pad = settings.pad_token_id
    num_beams = settings.num_beams if (settings.num_beams or 1) > 1 else DEFAULT_BEAMS
    decode = _decoder_for(loaded)

    state.log(f"generating for {prompts.size} examples: greedy and {num_beams} beams")
    reference = {
        beams: generate_all(original, prompts.inputs, num_beams=beams, batch_size=batch_size,
                            pad_token_id=pad)
        for beams in (1, num_beams)
    }
    original_scores = (
        score_text(reference[1], prompts.labels, decode) if prompts.labels is not None else None
    )
    save_check(bundle, prompts.inputs, reference[1])
    empty = vacuous(reference[1], stop_ids(pad, settings.eos_token_id))
    if empty:
        state.log("warning: the original generates only padding/end-of-sequence tokens for every "
                  "prompt; token identity with it would prove nothing")
    judged, broken = [], []
    for variant in variants:
        generate = runners[variant.name][0]
        try:
            greedy = generate_all(generate, prompts.inputs, num_beams=1, batch_size=batch_size,
                                  pad_token_id=pad)
            beam = generate_all(generate, prompts.inputs, num_beams=num_beams,
                                batch_size=batch_size, pad_token_id=pad)
        except Exception as e:
            if variant.name == BASELINE:
                raise
            line = f"{COULD_NOT_RUN}{summary(e)}"
            state.log(f"generation {variant.name}: {line}")
            broken.append(replace(variant, failures=(line,)))
            continue
        scores = score_text(greedy, prompts.labels, decode) if prompts.labels is not None else None
        greedy_share = identical_share(reference[1], greedy)
        beam_share = identical_share(reference[num_beams], beam)
        judged.append(replace(
            variant, greedy_identical=greedy_share, beam_identical=beam_share,
            scores=scores.to_json() if scores else None,
            task_metric=getattr(scores, str(prompts.metric)) if scores else None,
            failures=generation_failures(greedy=greedy_share, beam=beam_share,
                                         exact=variant.name == BASELINE, budget=variant.budget,
                                         scores=scores, original=original_scores,
                                         metric=prompts.metric, vacuous=empty),
        ))
        state.log(f"generation {variant.name}: greedy identical {greedy_share:.1%}, "
                  f"beam identical {beam_share:.1%}"
                  + (f", {prompts.metric} {judged[-1].task_metric:.4f}" if scores else ""))

    state.log(f"timing generation: {timing.prompts} prompts x {timing.rounds} rounds, batch 1")
    timed, base = _time(state, original, {v.name: runners[v.name][0] for v in judged}, judged,
                        prompts.inputs, pad)
    recommended, decided = _choose([*timed, *broken])
    return GenerationResult(
        split=graphs.to_json(),
        examples=prompts.size,
        labelled=prompts.labels is not None,
        metric=prompts.metric,
        num_beams=num_beams,
        original={"scores": original_scores.to_json() if original_scores else None,
                  "latency": base},
        variants=tuple(decided),
        recommended=recommended,
        threads=threads,
        notes=tuple(notes),
        vacuous=empty,
    )


def _time(state: ConversionState, original: Callable[..., np.ndarray],
          generators: Mapping[str, Callable[..., np.ndarray]], variants: Sequence[VariantRecord],
          inputs: Mapping[str, np.ndarray],
          pad: int | None) -> tuple[list[VariantRecord], dict[str, Any]]:
    """Time ``model.generate`` and every variant's loop, interleaved at batch 1."""
    from benchmarks.generation import time_generation

    timing = state.options.generation.timing
    with state.progress.bar(timing.rounds, "generation timing rounds") as bar:
        latency = time_generation({"original": original} | dict(generators), inputs, timing,
                                  pad_token_id=pad, on_round=lambda _: bar.advance())
    base = latency["original"]
    timed = [
        replace(v, latency=latency[v.name].to_json(),
                speedup=_ratio(latency[v.name].tokens_per_s, base.tokens_per_s),
                ttft_speedup=_ratio(base.ttft_p50_ms, latency[v.name].ttft_p50_ms))
        for v in variants
    ]
    return timed, base.to_json()


def _choose(variants: Sequence[VariantRecord]) -> tuple[str | None, list[VariantRecord]]:
    """Fastest tokens/s within budget; within 3% of it the most faithful; never below fp32."""
    from optimizers.select import Measured, choose

    fp32 = next(v for v in variants if v.name == BASELINE)
    if fp32.failures:
        return None, [replace(v, reason="not chosen: the fp32 graphs fail generation parity")
                      for v in variants]
    decision = choose(
        [Measured(name=v.name, precision=v.precision, device=v.device, failures=v.failures,
                  cost=_ms_per_token(v), task_metric=v.task_metric,
                  identical=v.greedy_identical, size_bytes=v.size_bytes or None)
         for v in variants],
        device="cpu", baseline=BASELINE, describe=lambda ms: f"{1000 / ms:.1f} tokens/s",
    )
    return decision.recommended, [replace(v, reason=decision.reasons[v.name]) for v in variants]


def _ms_per_token(variant: VariantRecord) -> float | None:
    tokens_per_s = (variant.latency or {}).get("tokens_per_s") or 0.0
    return 1000.0 / tokens_per_s if tokens_per_s > 0 else None


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

