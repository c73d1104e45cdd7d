"""Export a generative transformers model as the graphs a generation loop runs.

Encoder-decoder models (BART, mBART, T5, Marian, ...) become ``encoder_model.onnx`` and one
decoder with past key/values: optimum-onnx's merged decoder (``decoder_model_merged.onnx``,
whose ``use_cache_branch`` input picks the first step or a cached step) where it offers one,
else the pair ``decoder_model.onnx`` + ``decoder_with_past_model.onnx``. Decoder-only models
(GPT-2, Llama, ...) become one ``model.onnx`` that takes past key/values of length 0 on the
first step. The split goes into the manifest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert_model.core.errors import ExportError
from convert_model.core.quiet import quiet

# The roles are the generation loop's (the bundle's runtime/ owns them); the file names
# below are optimum-onnx's.
from convert_model.runtime.graphs import (
    DECODER,
    DECODER_FIRST,
    DECODER_ONLY,
    DECODER_WITH_PAST,
    ENCODER,
    ENCODER_DECODER,
)

GENERATIVE_TASKS = ("text2text-generation", "text-generation")
_FILES = {
    ENCODER: "encoder_model.onnx",
    DECODER_FIRST: "decoder_model.onnx",
    DECODER_WITH_PAST: "decoder_with_past_model.onnx",
    "merged": "decoder_model_merged.onnx",
    "decoder_only": "model.onnx",
}
CONFIG_FILES = ("config.json", "generation_config.json")


@dataclass(frozen=True, kw_only=True)
class GenerationGraphs:
    """The exported graphs of a generative model, by role, in one folder.

    Attributes:
        kind: ``encoder-decoder`` or ``decoder-only``.
        folder: where the graphs and the model's config/generation_config lie.
        files: role (``encoder``, ``decoder``, or ``decoder_first`` + ``decoder_with_past``)
            to file name inside ``folder``.
        merged: whether the decoder is one graph for the first and the cached steps.
        opset: the opset the graphs were exported at.
        seconds: how long the export took.
        unmerged: with ``keep_unmerged``, the pair the merged decoder was made from
            (``decoder_first``, ``decoder_with_past``), for passes that cannot enter its If.
    """

    kind: str
    folder: Path
    files: Mapping[str, str]
    merged: bool
    opset: int
    seconds: float
    unmerged: Mapping[str, str] = field(default_factory=dict)

    def path(self, role: str) -> Path:
        """The graph file for ``role``."""
        return self.folder / self.files[role]

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "kind": self.kind,
            "files": dict(self.files),
            "merged": self.merged,
            "opset": self.opset,
            "seconds": round(self.seconds, 3),
        }


def is_generative(task: str | None) -> bool:
    """Whether ``task`` generates sequences (and so gets a generation export)."""
    return task in GENERATIVE_TASKS


def export_generation(model: Any, folder: Path, *, task: str, opset: int = 18,
                      keep_unmerged: bool = False) -> GenerationGraphs:
    """Export ``model`` for ``task`` with past key/values into ``folder``.

    ``keep_unmerged`` keeps the decoder pair beside the merged decoder (``unmerged``).

    Raises:
        ExportError: when optimum-onnx cannot export the model for generation.
    """
    from optimum.exporters.onnx.convert import onnx_export_from_model

    if not is_generative(task):
        raise ExportError(f"task {task!r} does not generate; generative tasks: {GENERATIVE_TASKS}")
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with quiet(), _use_cache_restored(model):
            onnx_export_from_model(
                model,
                folder,
                task=f"{task}-with-past",
                opset=opset,
                do_validation=False,  # parity is measured on generated text, by us
                device="cpu",
            )
    except Exception as e:
        raise ExportError(f"generation export failed: {type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - start
    return _collect(folder, opset, seconds, keep_unmerged)


@contextlib.contextmanager
def _use_cache_restored(model: Any) -> Iterator[None]:
    """Put back every submodule's ``config.use_cache``, which optimum's patcher sets and keeps.

    Left changed, T5's ``generate`` then fails ("use_cache can only be set to True if
    T5Stack is used as a decoder"), and the original could no longer be compared.
    """
    missing = object()
    configs = {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}
    saved = [(config, getattr(config, "use_cache", missing)) for config in configs.values()]
    try:
        yield
    finally:
        for config, value in saved:
            if value is missing:
                if hasattr(config, "use_cache"):
                    delattr(config, "use_cache")
            else:
                config.use_cache = value


def _collect(folder: Path, opset: int, seconds: float,
             keep_unmerged: bool = False) -> GenerationGraphs:
    from converters.hf_folder import COPY_NAMES

    # The exporter also saves the tokenizer it finds; the bundle has it once, at its root.
    for name in COPY_NAMES - set(CONFIG_FILES):
        (folder / name).unlink(missing_ok=True)
    present = {role: name for role, name in _FILES.items() if (folder / name).is_file()}
    if ENCODER not in present:
        if "decoder_only" not in present:
            raise ExportError(f"generation export wrote no model graph into {folder}")
        return GenerationGraphs(
            kind=DECODER_ONLY,
            folder=folder,
            files={DECODER: present["decoder_only"]},
            merged=False,
            opset=opset,
            seconds=seconds,
        )
    unmerged: dict[str, str] = {}
    if "merged" in present:
        # The merged graph holds both decoders; the separate files would only double the bundle.
        for role in (DECODER_FIRST, DECODER_WITH_PAST):
            if role in present and keep_unmerged:
                unmerged[role] = present[role]
            elif role in present:
                (folder / present[role]).unlink()
        files = {ENCODER: present[ENCODER], DECODER: present["merged"]}
        merged = True
    else:
        missing = [r for r in (DECODER_FIRST, DECODER_WITH_PAST) if r not in present]
        if missing:
            raise ExportError(f"generation export wrote no {', '.join(missing)} graph")
        files = {r: present[r] for r in (ENCODER, DECODER_FIRST, DECODER_WITH_PAST)}
        merged = False
    return GenerationGraphs(
        kind=ENCODER_DECODER, folder=folder, files=files, merged=merged, opset=opset,
        seconds=seconds, unmerged=unmerged if len(unmerged) == 2 else {},
    )


def merge_decoder_pair(first: Path, with_past: Path, target: Path) -> None:
    """Optimum's ``merge_decoders``: one graph for the first and the cached decoding steps."""
    from optimum.onnx import merge_decoders

    with quiet():
        merge_decoders(first, with_past, save_path=target, strict=False)
