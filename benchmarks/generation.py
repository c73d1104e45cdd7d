"""Generation parity and speed: generated sequences compared token for token, and timed.

Measuring only. A generator is any callable that takes one batch of model inputs and
returns the new tokens it generated (decoder start and prompt removed), padded on the right;
``on_step`` is called after each decoding step so time-to-first-token can be read. The
caller applies budgets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from benchmarks.metrics import IGNORE_INDEX, chrf, exact_match, token_agreement

Inputs = Mapping[str, np.ndarray]


class Generate(Protocol):
    """Generates for one batch; returns new tokens (batch, steps), right-padded."""

    def __call__(
        self, inputs: Inputs, *, num_beams: int, on_step: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """New tokens for ``inputs``; ``on_step(i)`` after decoding step i."""
        ...


def trim(row: np.ndarray, pad_token_id: int | None) -> np.ndarray:
    """A generated row without its trailing padding."""
    if pad_token_id is None:
        return row
    end = len(row)
    while end > 0 and row[end - 1] == pad_token_id:
        end -= 1
    return row[:end]


def generate_all(
    generate: Generate,
    inputs: Inputs,
    *,
    num_beams: int,
    batch_size: int,
    pad_token_id: int | None,
) -> list[np.ndarray]:
    """Generate for every example, batch by batch; one trimmed token row per example."""
    count = len(next(iter(inputs.values())))
    rows: list[np.ndarray] = []
    for start in range(0, count, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
        tokens = generate(batch, num_beams=num_beams)
        rows.extend(trim(np.asarray(r), pad_token_id) for r in tokens)
    return rows


def identical_share(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> float:
    """Share of examples whose generated tokens are identical to the reference's."""
    if len(reference) != len(candidate) or not reference:
        raise ValueError(
            f"need the same, non-zero number of rows, got {len(reference)} and {len(candidate)}"
        )
    same = [np.array_equal(r, c) for r, c in zip(reference, candidate, strict=True)]
    return float(np.mean(same))


def stop_ids(*ids: int | Sequence[int] | None) -> frozenset[int]:
    """Token ids that carry no content (padding, end of sequence), from settings' fields."""
    found: set[int] = set()
    for value in ids:
        if value is None:
            continue
        found.update([value] if isinstance(value, int) else value)
    return frozenset(found)


def content_rows(rows: Sequence[np.ndarray], stops: frozenset[int]) -> int:
    """How many generated rows hold a token that is not padding or end of sequence."""
    return sum(bool(np.any(~np.isin(np.asarray(r), list(stops)))) for r in rows)


def vacuous(rows: Sequence[np.ndarray], stops: frozenset[int]) -> bool:
    """Whether nothing was generated but padding/EOS: token identity with it proves nothing."""
    return content_rows(rows, stops) == 0


def padded(rows: Sequence[np.ndarray], fill: int = IGNORE_INDEX - 1) -> np.ndarray:
    """Rows of different lengths as one matrix, padded with ``fill``."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass(frozen=True, kw_only=True)
class TextScores:
    """Generated text against labelled references: token agreement, exact match, chrF."""

    token_agreement: float
    exact_match: float
    chrf: float

    def to_json(self) -> dict[str, float]:
        """Return the manifest form."""
        return {k: round(v, 6) for k, v in asdict(self).items()}


def score_text(
    rows: Sequence[np.ndarray],
    labels: np.ndarray,
    decode: Callable[[np.ndarray], str] | None = None,
) -> TextScores:
    """Score generated rows against ``labels`` (token ids padded with -100).

    chrF reads text: ``decode`` turns ids into it (the tokenizer's decode, special tokens
    skipped); without one, each token id is one "character".
    """
    generated = padded(rows)
    references = [label[label != IGNORE_INDEX] for label in labels]
    to_text = decode or _ids_as_text
    return TextScores(
        token_agreement=token_agreement(generated, labels),
        exact_match=exact_match(generated, labels),
        chrf=chrf([to_text(r) for r in rows], [to_text(r) for r in references]),
    )


def _ids_as_text(ids: np.ndarray) -> str:
    # Private-use code points: one character per id, none of them whitespace.
    return "".join(chr(0xF0000 + int(i) % 0xFFFD) for i in ids)


@dataclass(frozen=True, kw_only=True)
class GenerationLatency:
    """One generator's timings over the same prompts, batch 1.

    Attributes:
        name: the generator.
        calls: how many generate calls were timed.
        ttft_p50_ms / ttft_p90_ms: time to first token (encoder, or prompt, plus one step).
        call_p50_ms: a whole generate call.
        tokens_per_s: new tokens over seconds, summed over every timed call.
        tokens_per_call: mean new tokens per call.
    """

    name: str
    calls: int
    ttft_p50_ms: float
    ttft_p90_ms: float
    call_p50_ms: float
    tokens_per_s: float
    tokens_per_call: float

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form, rounded for reading."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class GenerationTimingConfig:
    """How much to time: prompts (batch 1 each), warm-up passes, interleaved rounds."""

    prompts: int = 8
    warmup: int = 1
    rounds: int = 5
    max_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.prompts < 1 or self.rounds < 1 or self.warmup < 0 or self.max_seconds <= 0:
            raise ValueError(
                f"need prompts >= 1, rounds >= 1, warmup >= 0, max_seconds > 0; got {self}"
            )


def time_generation(
    generators: Mapping[str, Generate],
    inputs: Inputs,
    config: GenerationTimingConfig,
    *,
    pad_token_id: int | None,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, GenerationLatency]:
    """Time greedy generation of every generator on the same prompts, interleaved.

    Each round runs every prompt through every generator, the generators' order rotating
    from prompt to prompt, so a noisy neighbour slows them alike. Rounds stop early once
    ``config.max_seconds`` have passed (at least one round always runs).
    """
    count = min(config.prompts, len(next(iter(inputs.values()))))
    prompts = [{k: v[i : i + 1] for k, v in inputs.items()} for i in range(count)]
    names = list(generators)
    for _ in range(config.warmup):
        for name in names:
            generators[name](prompts[0], num_beams=1)
    ttft: dict[str, list[float]] = {n: [] for n in names}
    calls: dict[str, list[float]] = {n: [] for n in names}
    tokens: dict[str, int] = dict.fromkeys(names, 0)
    started = time.perf_counter()
    for round_index in range(config.rounds):
        for i, prompt in enumerate(prompts):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                first, total, new = _timed_call(generators[name], prompt, pad_token_id)
                ttft[name].append(first)
                calls[name].append(total)
                tokens[name] += new
        if on_round is not None:
            on_round(round_index)
        if time.perf_counter() - started > config.max_seconds:
            break
    return {
        n: GenerationLatency(
            name=n,
            calls=len(calls[n]),
            ttft_p50_ms=float(np.percentile(ttft[n], 50) * 1000),
            ttft_p90_ms=float(np.percentile(ttft[n], 90) * 1000),
            call_p50_ms=float(np.percentile(calls[n], 50) * 1000),
            tokens_per_s=tokens[n] / sum(calls[n]) if sum(calls[n]) > 0 else 0.0,
            tokens_per_call=tokens[n] / len(calls[n]),
        )
        for n in names
    }


def _timed_call(
    generate: Generate, prompt: Inputs, pad_token_id: int | None
) -> tuple[float, float, int]:
    """(seconds to the first token, seconds for the call, new tokens)."""
    first: list[float] = []
    start = time.perf_counter()

    def on_step(step: int) -> None:
        if step == 0:
            first.append(time.perf_counter() - start)

    out = generate(prompt, num_beams=1, on_step=on_step)
    total = time.perf_counter() - start
    new = sum(len(trim(np.asarray(r), pad_token_id)) for r in out)
    return (first[0] if first else total), total, new
