"""Load a Hugging Face model folder or Trainer ``checkpoint-N/`` folder.

The task is taken from ``--task`` or inferred from ``config.json``'s architectures through
optimum's task machinery; the model class follows from the task. Trainer state
(optimizer, scheduler, RNG) is never loaded, hashed or copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import CheckpointError, UsageError, summary
from convert_model.core.limits import load_json
from converters.paths import check_folder, check_named_files, index_shards
from converters.registry import LoadOptions, register_loader
from converters.sample_text import SENTENCES
from converters.torch_module import make_runner, output_names_of, to_torch
from converters.types import CheckpointForm, Inputs, LoadedModel

# Files a serving team needs beside the graph. Weights and trainer state are not among them.
COPY_NAMES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "preprocessor_config.json",
        "processor_config.json",
        "chat_template.jinja",
        "sentencepiece.bpe.model",
        "spiece.model",
        "tokenizer.model",
        "source.spm",
        "target.spm",
    }
)
# JSON files of data (a vocabulary, a tokenizer model) that name no other file.
_DATA_JSON = frozenset({"tokenizer.json", "vocab.json"})
TRAINER_STATE_NAMES = frozenset(
    {
        "optimizer.pt",
        "optimizer.bin",
        "scheduler.pt",
        "rng_state.pth",
        "trainer_state.json",
        "training_args.bin",
        "scaler.pt",
    }
)
_WEIGHT_PATTERNS = (
    "*.safetensors",
    "pytorch_model*.bin",
    "*.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_MARKERS = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer_config.json",
    "sentencepiece.bpe.model",
    "spiece.model",
)
# optimum infers fill-mask for some seq2seq heads; their class names say otherwise.
_ARCH_SUFFIX_TASKS = (("ForConditionalGeneration", "text2text-generation"),)
_FIRST_SHAPE_SENTENCES = 1
_SECOND_SHAPE_SENTENCES = 3


def read_config(folder: Path) -> dict[str, Any]:
    """Read ``config.json``; raise CheckpointError when it is empty or not a JSON object."""
    path = folder / "config.json"
    config = load_json(path.read_bytes(), path)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if "model_type" not in config:
        raise CheckpointError(f"{path}: no 'model_type' key; is this a transformers config?")
    if not isinstance(config["model_type"], str):
        raise CheckpointError(
            f"{path}: 'model_type' must be a string, got {type(config['model_type']).__name__}"
        )
    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)
    ):
        raise CheckpointError(
            f"{path}: 'architectures' must be a list of class names, got {architectures!r:.80}"
        )
    return config


def _optimum_tasks(model_type: str) -> tuple[str, ...] | None:
    """Tasks optimum-onnx can export for ``model_type``, or None when it does not know it."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type.replace("_", "-"), "onnx", library_name="transformers"
        )
    except KeyError:
        return None
    return tuple(tasks)


def infer_task(config: dict[str, Any], folder: Path) -> str:
    """Infer the task from the config's first architecture, as optimum does for hub models."""
    import transformers
    from optimum.exporters.tasks import TasksManager

    architectures = config.get("architectures") or []
    if not architectures:
        return "feature-extraction"
    arch = architectures[0]
    for suffix, task in _ARCH_SUFFIX_TASKS:
        if arch.endswith(suffix):
            return task
    model_class = getattr(transformers, arch, None)
    if model_class is None:
        raise CheckpointError(
            f"{folder}/config.json: unknown architecture {arch!r}; pass --task to choose one"
        )
    try:
        return TasksManager.infer_task_from_model(model_class)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{folder}: cannot infer a task from {arch!r} ({e}); pass --task"
        ) from e


def _check_task(task: str, model_type: str, folder: Path) -> tuple[str, ...] | None:
    from optimum.exporters.tasks import TasksManager

    known = _optimum_tasks(model_type)
    allowed = known if known is not None else tuple(TasksManager.get_all_tasks())
    if task not in allowed:
        raise UsageError(
            f"{folder}: unknown task {task!r} for model_type {model_type!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return known


@register_loader(CheckpointForm.HF_MODEL, CheckpointForm.HF_TRAINER_CHECKPOINT)
def load_hf_folder(folder: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Load a transformers model folder with its task, example inputs and files to copy."""
    import torch
    import transformers
    from optimum.exporters.tasks import TasksManager

    check_folder(folder)
    config_json = read_config(folder)
    check_named_files(folder, sorted(n for n in COPY_NAMES - _DATA_JSON if n.endswith(".json")))
    if config_json.get("auto_map") and not options.trust_remote_code:
        raise CheckpointError(
            f"{folder}/config.json: the model needs its own code (auto_map); "
            "re-run with --trust-remote-code if you trust its author"
        )
    try:
        config = transformers.AutoConfig.from_pretrained(
            folder, local_files_only=True, trust_remote_code=options.trust_remote_code
        )
    except (ValueError, KeyError, OSError, TypeError) as e:
        raise CheckpointError(f"{folder}/config.json: {summary(e)}") from e
    model_type = config.model_type
    task = options.task or infer_task(config_json, folder)
    task = TasksManager.map_from_synonym(task)
    known_tasks = _check_task(task, model_type, folder)
    model_class = TasksManager.get_model_class_for_task(
        task, framework="pt", library="transformers"
    )
    _check_weights_present(folder)
    hashed = _hashed_files(folder)  # checks every sharded index before anything is loaded
    try:
        model, info = model_class.from_pretrained(
            folder,
            config=config,
            local_files_only=True,
            output_loading_info=True,
            trust_remote_code=options.trust_remote_code,
            dtype=torch.float32,
        )
    except Exception as e:
        raise CheckpointError(f"{folder}: cannot load the weights: {summary(e)}") from e
    if info.get("missing_keys"):
        raise CheckpointError(
            f"{folder}: weights missing for task {task!r}: "
            f"{', '.join(sorted(info['missing_keys']))}"
        )
    if info.get("mismatched_keys"):
        shapes = [f"{k} {tuple(a)} vs {tuple(b)}" for k, a, b in info["mismatched_keys"]]
        raise CheckpointError(f"{folder}: weights of the wrong shape: {'; '.join(shapes)}")
    model.eval()
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False  # past key/values are a separate export (generation)

    onnx_config = None
    if known_tasks is not None:
        ctor = TasksManager.get_exporter_config_constructor(
            "onnx", model=model, task=task, library_name="transformers"
        )
        onnx_config = ctor(model.config)
    tokenizer = (
        load_tokenizer(folder, options.trust_remote_code) if has_tokenizer(folder) else None
    )

    if options.spec is not None:
        input_names = options.spec.names
        _check_input_names(model, input_names, folder)
        dynamic_axes = options.spec.dynamic_axes
        examples: tuple[Inputs, ...] = options.spec.examples(options.seed)
    elif onnx_config is not None:
        input_names = tuple(onnx_config.inputs)
        dynamic_axes = {k: dict(v) for k, v in onnx_config.inputs.items()}
        examples = _examples(onnx_config, tokenizer, config, folder)
    else:
        raise UsageError(
            f"{folder}: optimum-onnx does not know model_type {model_type!r}; "
            "describe the inputs with --input-spec"
        )
    try:
        with torch.inference_mode():
            trial = model(**to_torch(examples[0]))
    except Exception as e:
        raise CheckpointError(
            f"{folder}: the model rejects its example inputs "
            f"({', '.join(f'{k}{tuple(v.shape)}' for k, v in examples[0].items())}): {summary(e)}"
        ) from e
    produced = output_names_of(trial, folder)
    if onnx_config is not None:
        output_names = tuple(n for n in onnx_config.outputs if n in produced)
    else:
        output_names = tuple(produced)
    notes = (
        [f"ignored unexpected weights: {', '.join(sorted(info['unexpected_keys']))}"]
        if info.get("unexpected_keys")
        else []
    )
    ignored = sorted(p.name for p in folder.iterdir() if p.name in TRAINER_STATE_NAMES)
    if ignored:
        notes.append(f"trainer state ignored, not copied: {', '.join(ignored)}")
    return LoadedModel(
        source=folder,
        form=form,
        module=model,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        examples=examples,
        run=make_runner(model, input_names, output_names, "kwargs"),
        task=task,
        model_type=model_type,
        files_to_copy=tuple(sorted(p for p in folder.iterdir() if p.name in COPY_NAMES)),
        hashed_files=hashed,
        hf_model=model,
        onnx_config=onnx_config,
        notes=tuple(notes),
    )


def _check_input_names(model: Any, names: tuple[str, ...], folder: Path) -> None:
    """UsageError when --input-spec names an input the model's forward does not take."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = [n for n in names if n not in parameters]
    if unknown:
        raise UsageError(
            f"{folder}: --input-spec names {unknown}, which {type(model).__name__}.forward "
            f"does not take; it takes {', '.join(p for p in parameters if p != 'self')}"
        )


def _check_weights_present(folder: Path) -> None:
    if not any(any(folder.glob(p)) for p in _WEIGHT_PATTERNS):
        raise CheckpointError(
            f"{folder}: no weights found (expected model.safetensors or pytorch_model.bin)"
        )


def _hashed_files(folder: Path) -> tuple[Path, ...]:
    """Every file the load reads: weights, each index's shards, config and tokenizer files."""
    weights = {p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern)}
    shards = {
        folder / s.relative_to(folder.resolve())
        for index in folder.glob("*.index.json")
        for s in index_shards(index, folder)
    }
    copied = {p for p in folder.iterdir() if p.name in COPY_NAMES}
    return tuple(sorted(weights | shards | copied))


def has_tokenizer(folder: Path) -> bool:
    """Whether ``folder`` holds tokenizer files."""
    return any((folder / name).is_file() for name in _TOKENIZER_MARKERS)


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> Any:
    """The folder's tokenizer; CheckpointError when its files cannot be read."""
    import transformers

    try:
        return transformers.AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as e:
        raise CheckpointError(f"{folder}: cannot load the tokenizer: {summary(e)}") from e


def _examples(onnx_config: Any, tokenizer: Any, config: Any, folder: Path
              ) -> tuple[Inputs, ...]:
    """Two input sets of different batch and sequence sizes.

    Text models with a tokenizer get real sentences (padded, so the attention mask
    matters; a tokenizer without a pad token pads with its end token); the rest get
    optimum's dummy inputs for the task. Token ids past config.json's vocab_size are refused.
    """
    names = tuple(onnx_config.inputs)
    text_inputs = {"input_ids", "attention_mask", "token_type_ids"}
    two_dim = all(len(onnx_config.inputs[n]) == 2 for n in names)
    if tokenizer is not None and tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            tokenizer = None  # nothing to pad with: optimum's dummy inputs instead
        else:
            tokenizer.pad_token = tokenizer.eos_token
    if tokenizer is not None and set(names) <= text_inputs and two_dim:
        limit = min(getattr(config, "max_position_embeddings", 512) or 512, 512)
        sets = []
        for count in (_FIRST_SHAPE_SENTENCES, _SECOND_SHAPE_SENTENCES):
            encoded = tokenizer(
                list(SENTENCES[:count]),
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="np",
            )
            sets.append(_fill(dict(encoded), names))
        vocab = getattr(config, "vocab_size", None)
        highest = max((int(e["input_ids"].max()) for e in sets if "input_ids" in e), default=-1)
        if isinstance(vocab, int) and highest >= vocab:
            raise CheckpointError(
                f"{folder}: the tokenizer gives token id {highest}, but config.json's "
                f"vocab_size is {vocab}; tokenizer and model do not match"
            )
        return tuple(sets)
    return tuple(
        {
            k: np.asarray(v)
            for k, v in onnx_config.generate_dummy_inputs(
                framework="pt", batch_size=batch, sequence_length=seq
            ).items()
            if k in names
        }
        for batch, seq in ((1, 16), (2, 8))
    )


def _fill(encoded: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Keep the graph's inputs, adding zero token types when the tokenizer gives none."""
    shape = encoded["input_ids"].shape
    out = {}
    for name in names:
        value = encoded.get(name)
        out[name] = np.zeros(shape, dtype=np.int64) if value is None else value.astype(np.int64)
    return out
