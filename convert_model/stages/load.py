"""Stage 1: build a reference model if asked, recognise the checkpoint's form, load it safely."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from convert_model.core.errors import UsageError
from convert_model.core.names import REFERENCE_PREFIX
from convert_model.core.quiet import quiet
from convert_model.options import ConvertOptions
from convert_model.state import ConversionState
from converters.types import LoadedModel


def resolve_reference(checkpoint: str, options: ConvertOptions,
                      log: Callable[[str], None]) -> tuple[Path, ConvertOptions]:
    """Build ``reference:NAME`` (cached) and fill the options it defines that the user left unset.

    Any other checkpoint is its path, and the options stay as given.
    """
    if not checkpoint.startswith(REFERENCE_PREFIX):
        return Path(checkpoint), options
    import reference_models

    try:
        built = reference_models.build(checkpoint[len(REFERENCE_PREFIX):], progress=log)
    except reference_models.ReferenceModelError as e:
        raise UsageError(str(e)) from e
    defaults = dict(built.options)
    load: dict[str, Any] = {}
    for key in ("task", "input_spec", "model_class"):
        if key in defaults and getattr(options.load, key) is None:
            load[key] = defaults[key]
    if "model_kwargs" in defaults and not options.load.model_kwargs:
        load["model_kwargs"] = json.loads(defaults["model_kwargs"])
    updates: dict[str, Any] = {"load": replace(options.load, **load)}
    if options.eval.data is None:
        updates["eval"] = replace(options.eval, data=built.eval_data, metric=built.model.metric,
                                  output=built.model.metric_output, is_default=True)
    return built.checkpoint, replace(options, **updates)


def load_checkpoint(checkpoint: str, options: ConvertOptions,
                    log: Callable[[str], None]) -> tuple[Path, ConvertOptions, LoadedModel]:
    """The checkpoint's path, the options with a reference model's defaults, and the model."""
    from converters.forms import detect_form
    from converters.registry import loader_for

    path, options = resolve_reference(checkpoint, options, log)
    form = detect_form(path, options.load.model_class)
    log(f"form: {form}")
    with quiet():
        loaded = loader_for(form)(path, form, options.load)
    return path, options, loaded


def generates(loaded: LoadedModel) -> bool:
    """Whether the model generates text (and so gets the generation stage)."""
    from converters.export_generation import is_generative

    return loaded.hf_model is not None and is_generative(loaded.task)


def run(state: ConversionState) -> ConversionState:
    """Load the checkpoint; read the eval set the forward graphs are judged on."""
    path, options, loaded = load_checkpoint(state.checkpoint, state.options, state.log)
    state.log(f"model: {loaded.model_type}, task: {loaded.task or '-'}, "
              f"inputs: {', '.join(loaded.input_names)}")
    for note in loaded.notes:
        state.log(note)
    from benchmarks.splits import read_sample_data, split_data
    from convert_model.stages.preparation import calibrates
    from converters.data_checks import check_sample_data

    eval_set = _eval_set(options, loaded, generates(loaded), state.log)
    sample_path = options.eval.sample_data
    check_sample_data(sample_path, loaded)
    sample = read_sample_data(sample_path, loaded.input_names) if sample_path else None
    split = split_data(loaded.examples, eval_set, sample, options.load.seed,
                       needed=calibrates(options, loaded))
    loaded = replace(loaded, examples=loaded.examples + split.extra_checks)
    return replace(state, options=options, source=path, loaded=loaded,
                   generative=options.generation.enabled and generates(loaded),
                   eval_set=split.eval_set,  # the rows that judge: none of them calibrates
                   split=split)


def _eval_set(options: ConvertOptions, loaded: LoadedModel, generative: bool,
              log: Callable[[str], None]) -> Any:
    from benchmarks.evaluate import default_metric_output, load_eval_set
    from converters.data_checks import check_inputs

    settings = options.eval
    if settings.data is None or settings.metric is None:
        return None
    outputs = loaded.output_names
    output = settings.output or default_metric_output(settings.metric, outputs)
    if output not in outputs and generative:
        log(f"eval set read by the generation checks: its {settings.metric} metric reads "
            f"generated {output!r}")
        return None
    if output not in outputs and settings.is_default:
        # A generation metric reads generated sequences, which one forward pass does not make.
        log(f"eval set skipped: its {settings.metric} metric reads {output!r}, "
            f"which this graph does not output ({', '.join(outputs)})")
        return None
    if output not in outputs:
        raise UsageError(
            f"--metric-output {output!r} is not a model output; outputs: {', '.join(outputs)}"
        )
    dtypes = {name: value.dtype for name, value in loaded.examples[0].items()}
    features = (loaded.input_schema or {}).get("features")
    eval_set = load_eval_set(settings.data, settings.metric, output, loaded.input_names, dtypes,
                             features, encode=loaded.encode)
    check_inputs(settings.data, eval_set.inputs, loaded, "eval input")
    return eval_set
