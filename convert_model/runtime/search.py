"""Greedy and beam search over next-token logits, ported from transformers 4.57 to numpy.

The arithmetic follows ``GenerationMixin._sample`` (greedy) and ``_beam_search`` step by
step, in float32 like transformers, so that the same logits pick the same tokens:

- Greedy: logits processors on the raw float32 logits, argmax (first index on ties); rows
  that met EOS get ``pad_token_id``; a row stops at EOS or ``max_length``.
- Beam search: ``log_softmax`` first, then the processors on the log-probabilities; the top
  ``max(2, 1 + n_eos) * num_beams`` continuations per row; finished hypotheses scored by
  ``sum_logprobs / generated_length ** length_penalty``; ``early_stopping`` True, False and
  "never" as in ``_check_early_stop_heuristic``; the top beam per row is returned, cut to the
  longest returned hypothesis and filled with transformers' ``pad_token_id or eos[0]``.
- Processors, in transformers' order: repetition penalty, no-repeat n-grams, min length,
  min new tokens, forced BOS (at length 1), forced EOS (at ``max_length - 1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]
_MASKED = np.float32(-1.0e9)  # transformers' "never pick this" score in beam search


@dataclass(frozen=True, kw_only=True)
class SearchPlan:
    """The resolved settings of one generate call.

    Attributes:
        prompt_length: tokens the decoder starts from (start token, or the padded prompt).
        max_length: total decoder length at which every row stops.
        min_length: total length below which EOS is masked.
        min_new_tokens: new tokens below which EOS is masked; None for no such rule.
        eos_token_ids: end-of-sequence ids; empty when there is none.
        pad_token_id: what finished rows are padded with; None only without EOS.
        forced_bos_token_id: the token forced as the first generated one (after the start).
        forced_eos_token_ids: the tokens forced at ``max_length - 1``; empty for none.
        no_repeat_ngram_size: n-grams of this size occur at most once; 0 for no rule.
        repetition_penalty: divides positive / multiplies negative scores of seen tokens.
        num_beams: 1 for greedy search.
        length_penalty: exponent of the length that divides a finished beam's score.
        early_stopping: True, False or "never", as in transformers.
    """

    prompt_length: int
    max_length: int
    min_length: int = 0
    min_new_tokens: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    forced_bos_token_id: int | None = None
    forced_eos_token_ids: tuple[int, ...] = ()
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False


def process_scores(plan: SearchPlan, input_ids: IntArray, scores: FloatArray) -> FloatArray:
    """Apply the logits processors transformers builds for ``plan`` to a copy of ``scores``.

    ``input_ids`` are the sequences so far (rows match ``scores``' rows).
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    cur_len = input_ids.shape[1]
    eos = list(plan.eos_token_ids)
    if plan.repetition_penalty != 1.0:
        seen = np.take_along_axis(scores, input_ids, axis=1)
        penalty = np.float32(plan.repetition_penalty)
        seen = np.where(seen < 0, seen * penalty, seen / penalty)
        np.put_along_axis(scores, input_ids, seen, axis=1)
    if plan.no_repeat_ngram_size > 0:
        for row, banned in enumerate(_banned_ngram_tokens(input_ids, plan.no_repeat_ngram_size)):
            if banned:
                scores[row, banned] = -np.inf
    if eos and plan.min_length > 0 and cur_len < plan.min_length:
        scores[:, eos] = -np.inf
    if eos and plan.min_new_tokens and cur_len - plan.prompt_length < plan.min_new_tokens:
        scores[:, eos] = -np.inf
    if plan.forced_bos_token_id is not None and cur_len == 1:
        scores[:] = -np.inf
        scores[:, plan.forced_bos_token_id] = 0
    if plan.forced_eos_token_ids and cur_len == plan.max_length - 1:
        scores[:] = -np.inf
        scores[:, list(plan.forced_eos_token_ids)] = 0
    return scores


def _banned_ngram_tokens(input_ids: IntArray, n: int) -> list[list[int]]:
    cur_len = input_ids.shape[1]
    if cur_len + 1 < n:
        return [[] for _ in range(input_ids.shape[0])]
    banned = []
    for tokens in input_ids.tolist():
        seen: dict[tuple[int, ...], list[int]] = {}
        for gram in zip(*[tokens[i:] for i in range(n)], strict=False):
            seen.setdefault(tuple(gram[:-1]), []).append(gram[-1])
        banned.append(seen.get(tuple(tokens[cur_len + 1 - n:]), []))
    return banned


def log_softmax(logits: FloatArray) -> FloatArray:
    """Float32 log-softmax over the last axis, shifted by the max like torch's."""
    logits = logits.astype(np.float32, copy=False)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class GreedySearch:
    """Greedy decoding state: the sequences so far and which rows are still running."""

    def __init__(self, plan: SearchPlan, input_ids: IntArray) -> None:
        self.plan = plan
        self.sequences = np.asarray(input_ids, dtype=np.int64)
        self._unfinished = np.ones(self.sequences.shape[0], dtype=bool)

    @property
    def done(self) -> bool:
        """Whether every row has stopped."""
        return not self._unfinished.any()

    def next_input_ids(self) -> IntArray:
        """The tokens the decoder reads on the next step."""
        return self.sequences[:, -1:]

    def step(self, logits: FloatArray) -> IntArray | None:
        """Pick the next token of every row from its last-position ``logits``.

        Returns:
            None: greedy search never reorders the past key/values.
        """
        plan = self.plan
        scores = process_scores(plan, self.sequences, logits)
        tokens = scores.argmax(axis=-1).astype(np.int64)
        if plan.eos_token_ids:
            pad = plan.eos_token_ids[0] if plan.pad_token_id is None else plan.pad_token_id
            tokens = np.where(self._unfinished, tokens, np.int64(pad))
        self.sequences = np.concatenate([self.sequences, tokens[:, None]], axis=1)
        stop = np.isin(tokens, plan.eos_token_ids) | (self.sequences.shape[1] >= plan.max_length)
        self._unfinished &= ~stop
        return None

    def result(self) -> IntArray:
        """The generated sequences, prompt included."""
        return self.sequences


class BeamSearch:
    """Beam search state over ``batch * num_beams`` rows, kept as transformers keeps it."""

    def __init__(self, plan: SearchPlan, input_ids: IntArray) -> None:
        rows, cur_len = input_ids.shape
        beams = plan.num_beams
        if rows % beams or cur_len != plan.prompt_length:
            raise ValueError(
                f"input_ids of shape {input_ids.shape} do not match {beams} beams of a "
                f"{plan.prompt_length}-token prompt"
            )
        self.plan = plan
        self.batch = batch = rows // beams
        self.cur_len = cur_len
        self.beams_to_keep = max(2, 1 + len(plan.eos_token_ids)) * beams
        self._top_beam_mask = np.arange(self.beams_to_keep) < beams
        # transformers: `pad_token_id or eos_token_id[0] if eos_token_id is not None else -1`,
        # so a pad id of 0 falls through to the EOS id.
        if plan.eos_token_ids:
            fill = plan.pad_token_id if plan.pad_token_id else plan.eos_token_ids[0]
        else:
            fill = -1
        self._running = np.full((batch, beams, plan.max_length), fill, dtype=np.int64)
        self._running[:, :, :cur_len] = input_ids.reshape(batch, beams, cur_len)
        self._sequences = self._running.copy()
        self._running_scores = np.zeros((batch, beams), dtype=np.float32)
        self._running_scores[:, 1:] = _MASKED
        self._scores = np.full((batch, beams), _MASKED, dtype=np.float32)
        self._finished = np.zeros((batch, beams), dtype=bool)
        self._may_improve = np.ones((batch, 1), dtype=bool)
        self._running_origin = np.full((batch, beams, plan.max_length - cur_len), -1, np.int64)
        self._origin = self._running_origin.copy()
        self.done = False

    def next_input_ids(self) -> IntArray:
        """The tokens the decoder reads on the next step, one per beam."""
        rows = self.batch * self.plan.num_beams
        return self._running[:, :, self.cur_len - 1].reshape(rows, 1)

    def step(self, logits: FloatArray) -> IntArray:
        """Extend every beam by one token from its last-position ``logits``.

        Returns:
            For each of the ``batch * num_beams`` rows, the row whose past key/values it
            continues (the beam-reorder index).
        """
        plan, batch, beams = self.plan, self.batch, self.plan.num_beams
        cur_len, prompt = self.cur_len, plan.prompt_length
        flat = self._running[:, :, :cur_len].reshape(batch * beams, cur_len)
        log_probs = process_scores(plan, flat, log_softmax(logits))
        vocab = log_probs.shape[-1]
        log_probs = log_probs.reshape(batch, beams, vocab) + self._running_scores[:, :, None]
        top_scores, top_index = _topk(log_probs.reshape(batch, beams * vocab), self.beams_to_keep)

        source_beam = top_index // vocab
        top_sequences = _gather(self._running, source_beam)
        top_sequences[:, :, cur_len] = top_index % vocab
        top_origin = _gather(self._running_origin, source_beam)
        top_origin[:, :, cur_len - prompt] = source_beam + np.arange(batch)[:, None] * beams

        hits = np.isin(top_sequences[:, :, cur_len], plan.eos_token_ids)
        if cur_len + 1 >= plan.max_length:
            hits[:] = True

        # The best beams that did not stop run on.
        running_scores = top_scores + hits.astype(np.float32) * _MASKED
        keep = _topk(running_scores, beams)[1]
        self._running = _gather(top_sequences, keep)
        self._running_scores = _gather(running_scores, keep)
        self._running_origin = _gather(top_origin, keep)

        self._update_finished(top_sequences, top_scores, top_origin, hits)

        reorder = self._running_origin[:, :, cur_len - prompt].reshape(-1)
        self.cur_len = cur_len = cur_len + 1
        self._update_may_improve()
        open_beam = not (self._finished.all() and plan.early_stopping is True)
        self.done = not (self._may_improve.any() and open_beam and not hits.all())
        return reorder

    def _update_finished(self, top_sequences: IntArray, top_scores: FloatArray,
                         top_origin: IntArray, hits: npt.NDArray[np.bool_]) -> None:
        plan = self.plan
        just_finished = hits & self._top_beam_mask[None, :]
        length = self.cur_len + 1 - plan.prompt_length
        scores = top_scores / np.float32(length**plan.length_penalty)
        # Each mask is added on its own, in float32, as transformers does.
        full = self._finished.all(axis=-1, keepdims=True) & (plan.early_stopping is True)
        scores += full.astype(np.float32) * _MASKED
        scores += (~self._may_improve).astype(np.float32) * _MASKED
        scores += (~just_finished).astype(np.float32) * _MASKED

        merged_scores = np.concatenate([self._scores, scores], axis=1)
        best = _topk(merged_scores, plan.num_beams)[1]
        self._sequences = _gather(np.concatenate([self._sequences, top_sequences], axis=1), best)
        self._scores = _gather(merged_scores, best)
        self._origin = _gather(np.concatenate([self._origin, top_origin], axis=1), best)
        self._finished = _gather(np.concatenate([self._finished, just_finished], axis=1), best)

    def _update_may_improve(self) -> None:
        plan = self.plan
        if plan.early_stopping == "never" and plan.length_penalty > 0.0:
            best_length = plan.max_length - plan.prompt_length
        else:
            best_length = self.cur_len - plan.prompt_length
        best_running = self._running_scores[:, :1] / np.float32(best_length**plan.length_penalty)
        worst_finished = np.where(
            self._finished, self._scores.min(axis=1, keepdims=True), _MASKED
        )
        self._may_improve &= (best_running > worst_finished).any(axis=-1, keepdims=True)

    def result(self) -> IntArray:
        """The top hypothesis per row, cut to the longest one returned."""
        generated = (self._origin[:, 0, :] != -1).sum(axis=1).max()
        return self._sequences[:, 0, : self.plan.prompt_length + int(generated)]


def _topk(values: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    """The ``k`` largest values along the last axis, sorted descending.

    Ties among the picked values go to the lower index; which of several values tied at the
    k-th place gets picked is unspecified, as with ``torch.topk``.
    """
    if k < values.shape[-1]:
        candidates = np.argpartition(-values, k - 1, axis=-1)[..., :k]
    else:
        candidates = np.broadcast_to(np.arange(values.shape[-1]), values.shape).copy()
    picked = np.take_along_axis(values, candidates, axis=-1)
    order = np.lexsort((candidates, -picked), axis=-1)
    index = np.take_along_axis(candidates, order, axis=-1).astype(np.int64)
    return np.take_along_axis(values, index, axis=-1), index


def _gather(array: npt.NDArray[Any], index: IntArray) -> npt.NDArray[Any]:
    """Select along axis 1 (the beam axis) of a ``[batch, beams, ...]`` array."""
    index = index.reshape(index.shape + (1,) * (array.ndim - index.ndim))
    return np.take_along_axis(array, index, axis=1)
