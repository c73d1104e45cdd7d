"""The exported graphs as onnxruntime sessions: which file plays which role, and one step each.

Roles and file names are those of ``converters/export_generation.py`` (optimum-onnx's names),
repeated here because this package may import nothing of the project. Input and output names,
dtypes and fixed sizes come from the sessions; nothing about layers or heads is hard-coded.
Rules of a decoder step:

- The first step feeds past key/values of length 0 (the dtype, heads and head size of the
  session's input) and ``use_cache_branch=False`` to a merged graph; later steps feed the
  previous step's ``present.*`` outputs as ``past_key_values.*`` and ``use_cache_branch=True``.
- Cross-attention key/values (``*.encoder.*``) are kept from the first step: later steps of
  a merged graph return empty placeholders for them, and ``decoder_with_past`` none at all.
- Only self-attention key/values are reordered by beam; the cross-attention ones are equal
  across the beams of one row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

ENCODER_DECODER = "encoder-decoder"
DECODER_ONLY = "decoder-only"
ENCODER = "encoder"
DECODER = "decoder"  # merged decoder, or the decoder-only model
DECODER_FIRST = "decoder_first"  # unmerged pair: first step without past
DECODER_WITH_PAST = "decoder_with_past"  # unmerged pair: the cached steps
# Role sets a folder may hold; optimum-onnx's file names, as export_generation writes them.
_LAYOUTS: dict[frozenset[str], str] = {
    frozenset({ENCODER, DECODER}): ENCODER_DECODER,
    frozenset({ENCODER, DECODER_FIRST, DECODER_WITH_PAST}): ENCODER_DECODER,
    frozenset({DECODER}): DECODER_ONLY,
    frozenset({DECODER_FIRST, DECODER_WITH_PAST}): DECODER_ONLY,
}
_ENCODER_FILE = "encoder_model.onnx"
_MERGED_FILE = "decoder_model_merged.onnx"
_FIRST_FILE = "decoder_model.onnx"
_WITH_PAST_FILE = "decoder_with_past_model.onnx"
_DECODER_ONLY_FILE = "model.onnx"
_PAST = "past_key_values"
_PRESENT = "present"
_CROSS = ".encoder."  # optimum's marker of cross-attention key/values
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class GraphError(ValueError):
    """A graph's inputs or outputs are not those of an optimum-onnx generation export."""


def detect_files(folder: Path) -> dict[str, str]:
    """Map roles to optimum-onnx's file names found in ``folder``.

    A merged decoder wins over the unmerged pair; without an encoder the folder holds a
    decoder-only model.

    Raises:
        FileNotFoundError: when ``folder`` holds no complete set of generation graphs.
    """
    def present(name: str) -> bool:
        return (folder / name).is_file()

    decoders: dict[str, str] = {}
    if present(_MERGED_FILE):
        decoders = {DECODER: _MERGED_FILE}
    elif present(_FIRST_FILE) and present(_WITH_PAST_FILE):
        decoders = {DECODER_FIRST: _FIRST_FILE, DECODER_WITH_PAST: _WITH_PAST_FILE}
    if present(_ENCODER_FILE) and decoders:
        return {ENCODER: _ENCODER_FILE, **decoders}
    if not present(_ENCODER_FILE):
        if present(_DECODER_ONLY_FILE):
            return {DECODER: _DECODER_ONLY_FILE}
        if decoders:
            return decoders
    found = sorted(p.name for p in folder.glob("*.onnx"))
    raise FileNotFoundError(
        f"{folder} holds no generation graphs; expected {_ENCODER_FILE} with {_MERGED_FILE} "
        f"(or {_FIRST_FILE} + {_WITH_PAST_FILE}), or {_DECODER_ONLY_FILE}; found {found}"
    )


def graph_kind(files: Mapping[str, str]) -> str:
    """Return ``encoder-decoder`` or ``decoder-only`` for a role-to-file mapping.

    Raises:
        ValueError: when the roles are no known layout.
    """
    kind = _LAYOUTS.get(frozenset(files))
    if kind is None:
        allowed = [sorted(roles) for roles in _LAYOUTS]
        raise ValueError(f"files must map one of the role sets {allowed}, got {sorted(files)}")
    return kind


def open_session(path: Path, *, threads: int | None,
                 providers: Sequence[str] | None) -> ort.InferenceSession:
    """Open ``path`` as an onnxruntime session.

    ``threads`` sets the intra-op thread count (None: onnxruntime's default); ``providers``
    defaults to the CPU provider, so a bundle behaves the same wherever it is loaded.

    Raises:
        FileNotFoundError: when ``path`` is missing.
    """
    if not path.is_file():
        raise FileNotFoundError(f"graph {path} does not exist")
    options = ort.SessionOptions()
    options.log_severity_level = 4  # FATAL only: errors reach the caller as exceptions
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
        options.intra_op_num_threads = threads
    chosen = list(providers) if providers is not None else ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=options, providers=chosen)


def run_encoder(session: ort.InferenceSession, input_ids: npt.NDArray[np.int64],
                attention_mask: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """Run the encoder and return its last hidden state.

    Raises:
        GraphError: when the encoder needs an input other than input_ids / attention_mask.
    """
    values = {"input_ids": input_ids, "attention_mask": attention_mask}
    feed = {}
    for node in session.get_inputs():
        if node.name not in values:
            raise GraphError(
                f"encoder input {node.name!r} is not one this runtime feeds; it feeds "
                f"{sorted(values)}"
            )
        feed[node.name] = values[node.name]
    names = [node.name for node in session.get_outputs()]
    name = "last_hidden_state" if "last_hidden_state" in names else names[0]
    return np.asarray(session.run([name], feed)[0])


@dataclass(frozen=True, kw_only=True)
class KeyValueCache:
    """The past key/values between decoder steps, keyed by their ``past_key_values.*`` input name.

    Attributes:
        self_attention: the decoder's own key/values, which grow by one position per step.
        cross_attention: the encoder key/values of the first step (encoder-decoder only).
    """

    self_attention: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    cross_attention: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def reorder(self, rows: npt.NDArray[np.int64]) -> KeyValueCache:
        """Return the cache with self-attention rows taken in the order ``rows`` (beam search)."""
        return KeyValueCache(
            self_attention={k: np.take(v, rows, axis=0) for k, v in self.self_attention.items()},
            cross_attention=self.cross_attention,
        )

    def get(self, name: str) -> npt.NDArray[Any] | None:
        """The array for input ``name``, or None."""
        if name in self.self_attention:
            return self.self_attention[name]
        return self.cross_attention.get(name)


class Decoder:
    """One decoder step over the session(s) of a merged graph or an unmerged pair."""

    def __init__(self, first: ort.InferenceSession, later: ort.InferenceSession) -> None:
        self.first = first
        self.later = later
        for session, role in ((first, "first-step"), (later, "cached-step")):
            outputs = {node.name for node in session.get_outputs()}
            inputs = {node.name for node in session.get_inputs()}
            if "logits" not in outputs or "input_ids" not in inputs:
                raise GraphError(
                    f"the {role} decoder must take input_ids and return logits; it takes "
                    f"{sorted(inputs)} and returns {sorted(outputs)}"
                )
        produced = {_past_name(n.name) for n in first.get_outputs() if n.name.startswith(_PRESENT)}
        needed = {n.name for n in later.get_inputs() if n.name.startswith(_PAST)}
        if not needed:
            raise GraphError(
                "the cached-step decoder takes no past_key_values.* inputs; export the model "
                "with past key/values (task '...-with-past')"
            )
        if needed - produced:
            raise GraphError(
                f"the cached-step decoder needs past key/values {sorted(needed - produced)} that "
                f"the first step does not return (as present.*); it returns {sorted(produced)}"
            )

    @property
    def input_names(self) -> frozenset[str]:
        """Every input name of the decoder session(s)."""
        return frozenset(n.name for s in (self.first, self.later) for n in s.get_inputs())

    def run(self, values: Mapping[str, npt.NDArray[Any]],
            cache: KeyValueCache | None) -> tuple[npt.NDArray[Any], KeyValueCache]:
        """Run one step on ``values`` (input_ids, masks, ...) after ``cache`` (None: first step).

        Returns:
            The logits and the cache for the next step.

        Raises:
            GraphError: for a decoder input this runtime does not know how to feed.
        """
        session = self.first if cache is None else self.later
        rows = values["input_ids"].shape[0]
        feed: dict[str, npt.NDArray[Any]] = {}
        for node in session.get_inputs():
            name = node.name
            if name in values:
                feed[name] = values[name]
            elif name == "use_cache_branch":
                feed[name] = np.array([cache is not None])
            elif name.startswith(_PAST):
                past = cache.get(name) if cache is not None else None
                feed[name] = past if past is not None else _empty_past(node, rows)
            else:
                raise GraphError(
                    f"decoder input {name!r} is not one this runtime feeds; it feeds "
                    f"{sorted(values)}, use_cache_branch and past_key_values.*"
                )
        names = [node.name for node in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, feed), strict=True))
        self_attention: dict[str, npt.NDArray[Any]] = {}
        cross_attention = dict(cache.cross_attention) if cache is not None else {}
        for name, array in outputs.items():
            if not name.startswith(_PRESENT):
                continue
            past_name = _past_name(name)
            if _CROSS in past_name:
                # Later steps return placeholders (merged) or nothing (with_past): keep step 1's.
                cross_attention.setdefault(past_name, array)
            else:
                self_attention[past_name] = array
        return outputs["logits"], KeyValueCache(
            self_attention=self_attention, cross_attention=cross_attention
        )


def _past_name(present: str) -> str:
    return _PAST + present[len(_PRESENT):]


def _empty_past(node: Any, rows: int) -> npt.NDArray[Any]:
    """A past of length 0: batch ``rows``, the session's fixed sizes, 0 on the one free axis."""
    dtype = _DTYPES.get(node.type)
    if dtype is None:
        raise GraphError(
            f"past input {node.name!r} has type {node.type}; allowed: {sorted(_DTYPES)}"
        )
    shape = list(node.shape)
    free = [i for i, dim in enumerate(shape[1:], start=1) if not isinstance(dim, int)]
    if len(shape) < 2 or len(free) != 1:
        raise GraphError(
            f"past input {node.name!r} has shape {shape}; expected a free batch axis, one free "
            f"sequence axis and fixed sizes elsewhere (heads, head size)"
        )
    shape[0] = rows
    shape[free[0]] = 0
    return np.zeros(shape, dtype=dtype)
