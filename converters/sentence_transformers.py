"""Load a sentence-transformers folder: the transformer, its pooling and its normalisation.

``modules.json`` lists the modules in order: a ``Transformer`` (a Hugging Face model
folder, the root or ``0_Transformer/``), a ``Pooling`` (``1_Pooling/config.json``) and
optionally a ``Normalize``. The sentence-transformers package is not needed: the pooling
is rebuilt as a torch module around the transformers ``AutoModel``, so the exported graph
outputs ``sentence_embedding`` beside the token output ``last_hidden_state``.

Pooling as sentence-transformers computes it, the modes concatenated in its order
(cls, max, mean, mean_sqrt_len): cls takes the first token; max the largest value over
the tokens the attention mask keeps (the others count as -1e9); mean the masked sum over
the count (at least 1e-9); mean_sqrt_len the masked sum over the square root of the count.
Normalize divides by the L2 norm (at least 1e-12). Other modules (Dense, weighted-mean or
last-token pooling) are refused by name.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError
from converters.registry import LoadOptions, register_loader
from converters.torch_module import make_runner
from converters.types import CheckpointForm, LoadedModel

MODULE_TYPES = {
    "sentence_transformers.models.Transformer": "transformer",
    "sentence_transformers.models.Pooling": "pooling",
    "sentence_transformers.models.Normalize": "normalize",
}
POOLING_MODES = ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens")
UNSUPPORTED_MODES = ("weightedmean_tokens", "lasttoken")
ST_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")
OUTPUTS = ("last_hidden_state", "sentence_embedding")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: missing") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e


def read_modules(folder: Path) -> dict[str, Path]:
    """The folder of each module by role; CheckpointError naming a module it cannot take."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"{folder / 'modules.json'}: expected a list of module objects")
    found: dict[str, Path] = {}
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        role = MODULE_TYPES.get(str(module.get("type")))
        if role is None or role in found:
            raise CheckpointError(
                f"{folder / 'modules.json'}: module {module.get('type')!r} is not supported "
                f"(supported: Transformer, Pooling, Normalize, once each in that order)"
            )
        found[role] = folder / str(module.get("path", ""))
    if list(found)[:2] != ["transformer", "pooling"]:
        raise CheckpointError(
            f"{folder / 'modules.json'}: expected a Transformer then a Pooling module, got "
            f"{', '.join(found) or 'none'}"
        )
    return found


def pooling_modes(config_path: Path) -> tuple[str, ...]:
    """The pooling modes the config switches on, in sentence-transformers' order."""
    config = _read_json(config_path)
    unsupported = [m for m in UNSUPPORTED_MODES if config.get(f"pooling_mode_{m}")]
    if unsupported:
        raise CheckpointError(
            f"{config_path}: pooling {', '.join(unsupported)} is not supported; supported: "
            f"{', '.join(POOLING_MODES)}"
        )
    modes = tuple(m for m in POOLING_MODES if config.get(f"pooling_mode_{m}"))
    if not modes:
        raise CheckpointError(f"{config_path}: no pooling mode is switched on")
    return modes


def pooled_module(model: Any, input_names: tuple[str, ...], modes: tuple[str, ...],
                  normalize: bool) -> Any:
    """``model`` with sentence-transformers' pooling (and normalisation) after it."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        """Token output and pooled sentence embedding of a transformers encoder."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.config = model.config

        def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
            tokens = self.model(**{n: inputs[n] for n in input_names}).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            parts = []
            for mode in modes:
                if mode == "cls_token":
                    parts.append(tokens[:, 0])
                elif mode == "max_tokens":
                    parts.append(torch.where(mask > 0, tokens, -1e9).max(dim=1).values)
                else:
                    total = (tokens * mask).sum(dim=1)
                    count = mask.sum(dim=1).clamp(min=1e-9)
                    parts.append(total / (count if mode == "mean_tokens" else count.sqrt()))
            embedding = torch.cat(parts, dim=1)
            if normalize:
                embedding = torch.nn.functional.normalize(embedding, p=2, dim=1)
            return {"last_hidden_state": tokens, "sentence_embedding": embedding}

    return SentenceEmbedding().eval()


@register_loader(CheckpointForm.SENTENCE_TRANSFORMERS)
def load_sentence_transformers(folder: Path, form: CheckpointForm,
                               options: LoadOptions) -> LoadedModel:
    """A sentence-transformers model folder, exported with its pooling in the graph."""
    from converters.hf_folder import load_hf_folder

    modules = read_modules(folder)
    pooling_config = modules["pooling"] / "config.json"
    modes = pooling_modes(pooling_config)
    transformer = modules["transformer"]
    if not (transformer / "config.json").is_file():
        raise CheckpointError(f"{transformer}: the Transformer module has no config.json")
    base = load_hf_folder(transformer, CheckpointForm.HF_MODEL,
                          replace(options, task="feature-extraction"))
    normalize = "normalize" in modules
    module = pooled_module(base.module, base.input_names, modes, normalize)
    st_files = [folder / n for n in ST_FILES if (folder / n).is_file()] + [pooling_config]
    return replace(
        base,
        source=folder,
        form=form,
        module=module,
        output_names=OUTPUTS,
        run=make_runner(module, base.input_names, OUTPUTS, "kwargs"),
        files_to_copy=tuple(sorted({*base.files_to_copy, *st_files})),
        hashed_files=tuple(sorted({*base.hashed_files, *st_files})),
        hf_model=module,
        onnx_config=None,  # optimum's exporter would drop the pooling
        input_schema={
            "kind": "sentence-transformers",
            "inputs": list(base.input_names),
            "tokenizer": str(transformer.relative_to(folder)) or ".",
            "pooling": list(modes),
            "normalize": normalize,
            "output": "sentence_embedding",
            "token_output": "last_hidden_state",
        },
        notes=(*base.notes, f"sentence-transformers: pooling {'+'.join(modes)}"
               f"{', normalized' if normalize else ''}, in the graph as sentence_embedding"),
    )
