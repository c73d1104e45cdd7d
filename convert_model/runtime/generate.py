"""Generate token sequences from an exported bundle, as transformers' ``generate`` would.

The loop, for ``batch`` rows and ``num_beams`` beams:

1. Encoder-decoder: run the encoder on the (right-padded) input once, repeat its output and
   mask ``num_beams`` times per row, and start every decoder row from
   ``decoder_start_token_id`` (else ``bos_token_id``). Decoder-only: repeat the
   (left-padded) prompt and its mask; ``position_ids`` are ``cumsum(mask) - 1``, with 1 at
   masked places.
2. Each step runs the decoder on the last token (the whole prompt at first) with the past
   key/values, lets the search pick tokens, reorders the past by beam, and grows the
   decoder-only mask by one.
3. The search stops as transformers' does; the result is what ``generate`` returns as
   sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from .graphs import (
    DECODER,
    DECODER_FIRST,
    DECODER_WITH_PAST,
    ENCODER,
    ENCODER_DECODER,
    Decoder,
    detect_files,
    graph_kind,
    open_session,
    run_encoder,
)
from .search import BeamSearch, GreedySearch
from .settings import GenerationSettings, ModelFacts, load_settings

IntArray = npt.NDArray[np.int64]


class Generator:
    """Greedy and beam-search generation over the onnxruntime sessions of one bundle folder.

    Attributes:
        kind: ``encoder-decoder`` or ``decoder-only``.
        settings: the generation settings read from the config files.
        files: role (``encoder``, ``decoder``, ``decoder_first``, ``decoder_with_past``) to
            file name in the folder.
        sessions: role to its onnxruntime session.
    """

    def __init__(self, folder: str | Path, *, files: Mapping[str, str] | None = None,
                 config_folder: str | Path | None = None, threads: int | None = None,
                 providers: Sequence[str] | None = None,
                 config_overrides: Mapping[str, Any] | None = None) -> None:
        """Open the graphs in ``folder`` and read the generation settings.

        Args:
            folder: the folder holding the graphs.
            files: role to file name in ``folder``; None detects optimum-onnx's names.
            config_folder: where config.json / generation_config.json lie (default: folder).
            threads: onnxruntime intra-op threads per session (None: onnxruntime's default).
            providers: onnxruntime execution providers (None: the CPU provider).
            config_overrides: generation_config keys to replace before reading it, e.g.
                ``{"do_sample": False}`` for a checkpoint whose config samples.

        Raises:
            FileNotFoundError: when the folder or a graph is missing.
            ValueError: for unknown roles, settings the loop cannot honour, or graphs whose
                inputs/outputs are not those of a generation export (``GraphError``).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"bundle folder {folder} does not exist")
        self.files: dict[str, str] = dict(files) if files is not None else detect_files(folder)
        self.kind: str = graph_kind(self.files)
        settings, facts = load_settings(
            Path(config_folder) if config_folder else folder, config_overrides
        )
        self.settings: GenerationSettings = settings
        self._facts: ModelFacts = facts
        self.sessions: dict[str, ort.InferenceSession] = {
            role: open_session(folder / name, threads=threads, providers=providers)
            for role, name in self.files.items()
        }
        if DECODER in self.sessions:
            first = later = self.sessions[DECODER]
        else:
            first, later = self.sessions[DECODER_FIRST], self.sessions[DECODER_WITH_PAST]
        self._decoder = Decoder(first, later)

    def generate(self, input_ids: npt.ArrayLike, attention_mask: npt.ArrayLike | None = None, *,
                 max_new_tokens: int | None = None, num_beams: int | None = None,
                 on_step: Callable[[int], None] | None = None, **overrides: Any) -> IntArray:
        """Generate from ``input_ids`` with greedy (``num_beams=1``) or beam search.

        Args:
            input_ids: ``[batch, length]`` token ids; right-padded for an encoder-decoder,
                left-padded for a decoder-only model.
            attention_mask: 1 for tokens, 0 for padding; None infers it from
                ``pad_token_id`` as transformers does.
            max_new_tokens: overrides the settings' ``max_new_tokens``.
            num_beams: overrides the settings' ``num_beams``.
            on_step: called with the step index (0 = first generated token) after each step.
            **overrides: other ``GenerationSettings`` fields for this call.

        Returns:
            int64 ``[batch, length]`` sequences, as transformers' ``generate`` returns them:
            the decoder start (and forced BOS) then new tokens for an encoder-decoder, the
            prompt then new tokens for a decoder-only model; finished rows padded.

        Raises:
            ValueError: for malformed inputs, unknown settings or ones the loop cannot honour.
        """
        if max_new_tokens is not None:
            overrides["max_new_tokens"] = max_new_tokens
        if num_beams is not None:
            overrides["num_beams"] = num_beams
        settings = self.settings.with_overrides(overrides)
        ids, mask = _check_inputs(input_ids, attention_mask, settings)
        beams = settings.num_beams
        values: dict[str, npt.NDArray[Any]] = {}
        if self.kind == ENCODER_DECODER:
            start = settings.decoder_start_token_id
            start = settings.bos_token_id if start is None else start
            if start is None:
                raise ValueError(
                    "an encoder-decoder needs decoder_start_token_id or bos_token_id; "
                    "the configs set neither"
                )
            hidden = run_encoder(self.sessions[ENCODER], ids, mask)
            values["encoder_hidden_states"] = np.repeat(hidden, beams, axis=0)
            values["encoder_attention_mask"] = np.repeat(mask, beams, axis=0)
            prompt = np.full((ids.shape[0] * beams, 1), start, dtype=np.int64)
            decoder_mask = None
        else:
            prompt = np.repeat(ids, beams, axis=0)
            decoder_mask = np.repeat(mask, beams, axis=0)
        plan = settings.plan(
            prompt_length=prompt.shape[1],
            max_length_given="max_length" in overrides and overrides["max_length"] is not None,
            max_positions=self._facts.max_positions,
        )
        search: GreedySearch | BeamSearch = (
            GreedySearch(plan, prompt) if beams == 1 else BeamSearch(plan, prompt)
        )
        wants_positions = "position_ids" in self._decoder.input_names
        tokens, cache, step = prompt, None, 0
        while True:
            values["input_ids"] = tokens
            if decoder_mask is not None:
                values["attention_mask"] = decoder_mask
                if wants_positions:
                    values["position_ids"] = _position_ids(decoder_mask)[:, -tokens.shape[1]:]
            logits, cache = self._decoder.run(values, cache)
            reorder = search.step(np.asarray(logits[:, -1, :], dtype=np.float32))
            if on_step is not None:
                on_step(step)
            step += 1
            if search.done:
                return search.result()
            if reorder is not None:
                cache = cache.reorder(reorder)
            tokens = search.next_input_ids()
            if decoder_mask is not None:
                ones = np.ones((decoder_mask.shape[0], 1), dtype=np.int64)
                decoder_mask = np.concatenate([decoder_mask, ones], axis=1)


def _check_inputs(input_ids: npt.ArrayLike, attention_mask: npt.ArrayLike | None,
                  settings: GenerationSettings) -> tuple[IntArray, IntArray]:
    ids = np.asarray(input_ids)
    if ids.ndim != 2 or ids.shape[0] < 1 or ids.shape[1] < 1 or ids.dtype.kind not in "iu":
        raise ValueError(
            f"input_ids must be a non-empty [batch, length] integer array, got shape "
            f"{ids.shape} of {ids.dtype}"
        )
    ids = ids.astype(np.int64)
    if attention_mask is None:
        return ids, _infer_attention_mask(ids, settings)
    mask = np.asarray(attention_mask)
    if mask.shape != ids.shape:
        raise ValueError(f"attention_mask has shape {mask.shape}; input_ids have {ids.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("attention_mask must hold only 0 and 1")
    return ids, mask.astype(np.int64)


def _infer_attention_mask(ids: IntArray, settings: GenerationSettings) -> IntArray:
    # transformers masks pad tokens only when the pad id is present and is no EOS id.
    pad = settings.pad_or_eos
    if pad is not None and (ids == pad).any() and pad not in settings.eos_token_ids:
        return (ids != pad).astype(np.int64)
    return np.ones_like(ids)


def _position_ids(mask: IntArray) -> IntArray:
    positions = np.cumsum(mask, axis=1) - 1
    return np.where(mask == 0, 1, positions).astype(np.int64)
