"""Export a generative transformers model as the graphs a generation loop runs.

Encoder-decoder models (BART, mBART, T5, Marian, ...) become ``encoder_model.onnx`` and one
decoder with past key/values: optimum-onnx's merged decoder (``decoder_model_merged.onnx``,
whose ``use_cache_branch`` input picks the first step or a cached step) where it offers one,
else the pair ``decoder_model.onnx`` + ``decoder_with_past_model.onnx``. Decoder-only models
(GPT-2, Llama, ...) become one ``model.onnx`` that takes past key/values of length 0 on the
first step. The split goes into the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert_model.errors import ExportError
from convert_model.quiet import quiet

GENERATIVE_TASKS = ("text2text-generation", "text-generation")
ENCODER_DECODER = "encoder-decoder"
DECODER_ONLY = "decoder-only"
# Roles a generation loop looks up; the values are optimum-onnx's file names.
ENCODER = "encoder"
DECODER = "decoder"  # merged decoder, or the decoder-only model
DECODER_FIRST = "decoder_first"  # unmerged pair: first step without past
DECODER_WITH_PAST = "decoder_with_past"  # unmerged pair: the cached steps
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
    """

    kind: str
    folder: Path
    files: Mapping[str, str]
    merged: bool
    opset: int
    seconds: float

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


def export_generation(model: Any, folder: Path, *, task: str, opset: int = 18) -> GenerationGraphs:
    """Export ``model`` for ``task`` with past key/values into ``folder``.

    Raises:
        ExportError: when optimum-onnx cannot export the model for generation.
    """
    from optimum.exporters.onnx.convert import onnx_export_from_model

    if not is_generative(task):
        raise ExportError(f"task {task!r} does not generate; generative tasks: {GENERATIVE_TASKS}")
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with quiet():
            onnx_export_from_model(
                model,
                folder,
                task=f"{task}-with-past",
                opset=opset,
                do_validation=False,  # parity is measured on generated text, by us
                device="cpu",
            )
    except Exception as e:  # noqa: BLE001  the exporter's failures are many and untyped
        raise ExportError(f"generation export failed: {type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - start
    return _collect(folder, opset, seconds)


def _collect(folder: Path, opset: int, seconds: float) -> GenerationGraphs:
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
    if "merged" in present:
        # The merged graph holds both decoders; the separate files would only double the bundle.
        for role in (DECODER_FIRST, DECODER_WITH_PAST):
            if role in present:
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
        seconds=seconds,
    )
