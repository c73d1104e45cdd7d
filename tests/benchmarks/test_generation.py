"""Generation measuring: sequence identity, text scores (chrF as sacrebleu), interleaved timing."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from benchmarks.generation import (
    GenerationTimingConfig,
    Inputs,
    generate_all,
    identical_share,
    padded,
    score_text,
    time_generation,
    trim,
)
from benchmarks.metrics import IGNORE_INDEX, chrf, exact_match, score

PAD = 1


def test_chrf_matches_sacrebleu_corpus_scores():
    # Expected values: sacrebleu 2.6 `corpus_chrf(hyps, [refs]).score` on the same strings.
    hyps = ["the cat sat on the mat", "a dog", "hello world there"]
    refs = ["the cat is on the mat", "the dog", "hello there world"]
    assert chrf(hyps, refs) == pytest.approx(56.061272833451326, abs=1e-9)
    assert chrf(["x", "ab"], ["xy", "abc"]) == pytest.approx(52.23880597014926, abs=1e-9)


def test_chrf_bounds_and_whitespace():
    assert chrf(["a b c"], ["abc"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["abc"]) == 0.0
    with pytest.raises(ValueError, match="as many hypotheses"):
        chrf(["a"], [])


def test_exact_match_compares_labelled_positions_only():
    labels = np.array([[5, 6, 2, IGNORE_INDEX], [5, 7, 2, IGNORE_INDEX]])
    outputs = np.array([[5, 6, 2, PAD, PAD], [5, 6, 2, PAD, PAD]])
    assert exact_match(outputs, labels) == 0.5
    assert score("exact_match", outputs, labels) == 0.5


def test_trim_strips_trailing_padding_only():
    assert trim(np.array([PAD, 4, PAD, PAD]), PAD).tolist() == [PAD, 4]
    assert trim(np.array([4, 5]), None).tolist() == [4, 5]


def _echo_generator(shift: int = 0, delay_s: float = 0.0) -> Callable[..., np.ndarray]:
    """Generates each row's first three ids (+shift), then pads: a stand-in for a model."""

    def run(inputs: Inputs, *, num_beams: int, on_step=None) -> np.ndarray:
        ids = inputs["input_ids"][:, :3] + shift
        for step in range(ids.shape[1]):
            time.sleep(delay_s)
            if on_step is not None:
                on_step(step)
        return np.concatenate([ids, np.full((len(ids), 2), PAD)], axis=1)

    return run


def test_identical_share_counts_rows_after_trimming():
    inputs = {"input_ids": np.arange(30).reshape(10, 3) + 10}
    reference = generate_all(_echo_generator(), inputs, num_beams=1, batch_size=4,
                             pad_token_id=PAD)
    assert len(reference) == 10 and all(len(r) == 3 for r in reference)
    same = generate_all(_echo_generator(), inputs, num_beams=1, batch_size=3, pad_token_id=PAD)
    assert identical_share(reference, same) == 1.0
    changed = [*same[:7], *(r + 1 for r in same[7:])]
    assert identical_share(reference, changed) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="same, non-zero"):
        identical_share(reference, same[:3])


def test_score_text_against_labels():
    rows = [np.array([5, 6, 2]), np.array([5, 9, 2])]
    labels = np.array([[5, 6, 2], [5, 7, 2]])
    scores = score_text(rows, labels)
    assert scores.exact_match == 0.5
    assert scores.token_agreement == pytest.approx(5 / 6)
    assert 0 < scores.chrf < 100
    decoded = score_text(rows, labels, decode=lambda ids: " ".join(map(str, ids)))
    assert decoded.exact_match == scores.exact_match
    assert padded(rows).shape == (2, 3)


def test_time_generation_reads_ttft_and_tokens_per_second():
    inputs = {"input_ids": np.arange(12).reshape(4, 3) + 10}
    latency = time_generation(
        {"slow": _echo_generator(delay_s=0.004), "fast": _echo_generator(delay_s=0.001)},
        inputs,
        GenerationTimingConfig(prompts=4, warmup=0, rounds=2),
        pad_token_id=PAD,
    )
    for record in latency.values():
        assert record.calls == 8
        assert record.tokens_per_call == 3
        assert 0 < record.ttft_p50_ms <= record.call_p50_ms
    # Three steps of 4 ms against three of 1 ms: the ratio is far beyond timer noise.
    assert latency["fast"].tokens_per_s > 1.5 * latency["slow"].tokens_per_s


def test_generation_timing_config_rejects_bad_values():
    with pytest.raises(ValueError, match="prompts >= 1"):
        GenerationTimingConfig(prompts=0)
