"""Task metrics of the reference models, in pure numpy.

`score(metric, outputs, labels)` is how an evaluation set turns a model's
outputs into one number, whatever ran the model (torch, onnxruntime, a
quantised variant), so that damage shows up as a task metric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

# Labels of generated sequences are padded with this, as in Hugging Face's seq2seq training.
IGNORE_INDEX = -100


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax over the last axis equals the integer label."""
    _check_rows(outputs, labels)
    if outputs.ndim != 2 or labels.ndim != 1:
        raise ValueError(
            "accuracy needs outputs (N, classes) and labels (N,), "
            f"got {outputs.shape} and {labels.shape}"
        )
    classes = outputs.shape[1]
    if not np.issubdtype(labels.dtype, np.number) or np.any(labels != np.round(labels)):
        raise ValueError(f"accuracy needs integer class labels, got {labels.dtype} values")
    outside = labels[(labels < 0) | (labels >= classes)]
    if outside.size:
        raise ValueError(
            f"accuracy needs labels 0..{classes - 1} (the model has {classes} classes), "
            f"got {outside[0]:g}"
        )
    return float(np.mean(np.argmax(outputs, axis=-1) == labels))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties given their average rank (as scipy.stats.rankdata does)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Each run of equal values gets the mean of the positions it spans.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends - 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rank correlation of outputs[:, 0] (or a 1-D output) with the label scores."""
    _check_rows(outputs, labels)
    predicted = outputs.reshape(len(outputs), -1)[:, 0] if outputs.ndim > 1 else outputs
    rp, rl = _ranks(predicted.astype(np.float64)), _ranks(labels.astype(np.float64).ravel())
    rp, rl = rp - rp.mean(), rl - rl.mean()
    denominator = float(np.sqrt((rp**2).sum() * (rl**2).sum()))
    # A constant prediction ranks nothing: no correlation rather than a division by zero.
    return float((rp * rl).sum() / denominator) if denominator > 0 else 0.0


def micro_f1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Micro-averaged F1 of `sigmoid(outputs) > 0.5` (outputs are logits) vs multi-hot labels."""
    # sigmoid(x) > 0.5 exactly when x > 0; comparing logits avoids overflow in exp.
    return _micro_f1(outputs, labels, 0.0)


def micro_f1_probabilities(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Micro-averaged F1 of `outputs > 0.5` (outputs are probabilities) vs multi-hot labels."""
    return _micro_f1(outputs, labels, 0.5)


def _micro_f1(outputs: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    _check_rows(outputs, labels)
    if outputs.shape != labels.shape:
        raise ValueError(
            "micro_f1 needs outputs and labels of one shape, "
            f"got {outputs.shape} and {labels.shape}"
        )
    predicted = outputs > threshold
    truth = labels.astype(bool)
    true_positive = int(np.sum(predicted & truth))
    denominator = int(predicted.sum()) + int(truth.sum())
    return 2.0 * true_positive / denominator if denominator else 1.0


def token_agreement(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of reference tokens matched at the same position by the generated tokens.

    `labels` are reference token ids padded with -100 (IGNORE_INDEX); `outputs`
    are generated ids aligned with them (decoder start token removed), of any
    width: positions past the end of `outputs` count as misses.
    """
    _check_rows(outputs, labels)
    if outputs.ndim != 2 or labels.ndim != 2:
        raise ValueError(
            f"token_agreement needs 2-D outputs and labels, got {outputs.shape} and {labels.shape}"
        )
    aligned, counted = _aligned(outputs, labels)
    if not counted.any():
        raise ValueError("token_agreement needs at least one label that is not -100")
    return float(np.sum((aligned == labels) & counted) / np.sum(counted))


def exact_match(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose generated tokens match every labelled position.

    Aligned like ``token_agreement``. The labels end with EOS, so a row that matches them
    stopped where the reference stopped; what follows (padding) is not compared.
    """
    _check_rows(outputs, labels)
    aligned, counted = _aligned(outputs, labels)
    return float(np.mean(np.all((aligned == labels) | ~counted, axis=1)))


def _aligned(outputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs cut or padded (with an id no label has) to the labels' width; labelled mask."""
    width = labels.shape[1]
    aligned = np.full(labels.shape, IGNORE_INDEX - 1, dtype=np.int64)
    aligned[:, : min(width, outputs.shape[1])] = outputs[:, :width]
    return aligned, labels != IGNORE_INDEX


CHRF_ORDER = 6  # character n-grams up to 6, as chrF (Popović 2015) and sacrebleu's default
CHRF_BETA = 2.0  # recall weighted twice as much as precision


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0-100): character n-gram F-beta, n = 1..6, beta = 2, spaces removed.

    Rules, as sacrebleu 2's ``CHRF()`` default: n-gram counts are summed over the corpus per
    order; precision and recall are averaged over the orders with n-grams on both sides;
    the score is the F-beta of those averages.
    """
    if len(hypotheses) != len(references) or not references:
        raise ValueError(
            "chrf needs as many hypotheses as references, and at least one; "
            f"got {len(hypotheses)} and {len(references)}"
        )
    matches = np.zeros(CHRF_ORDER)
    hyp_total = np.zeros(CHRF_ORDER)
    ref_total = np.zeros(CHRF_ORDER)
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_chars, ref_chars = "".join(hyp.split()), "".join(ref.split())
        for n in range(1, CHRF_ORDER + 1):
            hyp_grams = Counter(hyp_chars[i : i + n] for i in range(len(hyp_chars) - n + 1))
            ref_grams = Counter(ref_chars[i : i + n] for i in range(len(ref_chars) - n + 1))
            matches[n - 1] += sum((hyp_grams & ref_grams).values())
            # A hypothesis n-gram counts only where the reference has n-grams of that order.
            hyp_total[n - 1] += sum(hyp_grams.values()) if ref_grams else 0
            ref_total[n - 1] += sum(ref_grams.values())
    # Orders with no n-grams on either side (very short strings) are left out of the mean.
    effective = (hyp_total > 0) & (ref_total > 0)
    if not effective.any():
        return 100.0 if all(h == r for h, r in zip(hypotheses, references, strict=True)) else 0.0
    precision = float(np.mean(matches[effective] / hyp_total[effective]))
    recall = float(np.mean(matches[effective] / ref_total[effective]))
    if precision + recall == 0:
        return 0.0
    beta2 = CHRF_BETA**2
    return 100.0 * (1 + beta2) * precision * recall / (beta2 * precision + recall)


def knn_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out nearest-neighbour accuracy of sentence embeddings, by cosine.

    ``outputs`` (N, D) are embeddings, or (N, tokens, D) hidden states whose first token
    ([CLS]) is the embedding; each row takes the label of its most similar other row.
    """
    _check_rows(outputs, labels)
    if len(labels) < 2 or labels.ndim != 1 or outputs.ndim not in (2, 3):
        raise ValueError(
            "knn_accuracy needs outputs (N, D) or (N, tokens, D) and labels (N,), N >= 2, "
            f"got {outputs.shape} and {labels.shape}"
        )
    vectors = (outputs[:, 0] if outputs.ndim == 3 else outputs).astype(np.float64)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(labels[similarity.argmax(axis=1)] == labels))


def _check_rows(outputs: np.ndarray, labels: np.ndarray) -> None:
    if len(outputs) != len(labels) or len(labels) == 0:
        raise ValueError(
            "outputs and labels need the same, non-zero number of rows, "
            f"got {len(outputs)} and {len(labels)}"
        )


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "spearman": spearman,
    "micro_f1": micro_f1,
    "micro_f1_probabilities": micro_f1_probabilities,
    "token_agreement": token_agreement,
    "exact_match": exact_match,
    "knn_accuracy": knn_accuracy,
}


def check_metric(metric: str) -> str:
    """Return `metric` if it is a known metric name, else raise naming the known ones."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
    return metric


def score(metric: str, outputs: np.ndarray, labels: np.ndarray) -> float:
    """Score model `outputs` against `labels` with the named task metric."""
    return METRICS[check_metric(metric)](np.asarray(outputs), np.asarray(labels))
