"""The pure-numpy task metrics the evaluation sets are scored with."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.metrics import IGNORE_INDEX, METRICS, score


def test_score_accuracy_compares_argmax_with_labels() -> None:
    outputs = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.1, 0.2]])
    assert score("accuracy", outputs, np.array([0, 1, 1, 1])) == 0.75


def test_score_spearman_is_one_when_ranks_agree_whatever_the_scale() -> None:
    labels = np.array([0.1, 0.5, 0.2, 3.0])
    assert score("spearman", np.exp(labels)[:, None], labels) == pytest.approx(1.0)
    assert score("spearman", -labels[:, None], labels) == pytest.approx(-1.0)


def test_score_spearman_gives_ties_their_average_rank() -> None:
    # Output ranks (0, 1.5, 1.5, 3) against (0, 1, 2, 3): 4.5 / sqrt(4.5 * 5), as scipy gives.
    outputs = np.array([[1.0], [2.0], [2.0], [3.0]])
    assert score("spearman", outputs, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(
        0.9486832980505138
    )


def test_score_spearman_is_zero_when_outputs_are_constant() -> None:
    assert score("spearman", np.ones((5, 1)), np.arange(5.0)) == 0.0


def test_score_micro_f1_thresholds_logits_at_zero() -> None:
    logits = np.array([[3.0, -1.0, 0.5], [-2.0, -0.1, 4.0]])
    labels = np.array([[1, 0, 0], [0, 1, 1]])
    # predicted positives (0,0) (0,2) (1,2); true positives (0,0) (1,2): F1 = 2*2 / (3 + 3)
    assert score("micro_f1", logits, labels) == pytest.approx(4 / 6)


def test_score_token_agreement_ignores_padding_and_counts_missing_tokens_as_wrong() -> None:
    labels = np.array([[5, 6, 2, IGNORE_INDEX], [7, 2, IGNORE_INDEX, IGNORE_INDEX]])
    generated = np.array([[5, 9, 2], [7, 1, 1]])
    assert score("token_agreement", generated, labels) == pytest.approx(3 / 5)
    assert score("token_agreement", generated[:, :1], labels) == pytest.approx(2 / 5)


def test_score_raises_naming_known_metrics_when_metric_unknown() -> None:
    with pytest.raises(ValueError, match="unknown metric 'bleu'") as error:
        score("bleu", np.zeros((1, 2)), np.zeros(1))
    for name in METRICS:
        assert name in str(error.value)


def test_score_raises_when_rows_differ() -> None:
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        score("accuracy", np.zeros((3, 2)), np.zeros(2, dtype=np.int64))


def test_score_knn_accuracy_labels_each_row_by_its_nearest_other_row() -> None:
    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert score("knn_accuracy", embeddings, np.array([0, 0, 1, 1])) == 1.0
    assert score("knn_accuracy", embeddings, np.array([0, 1, 0, 1])) == 0.0
    hidden = np.stack([embeddings, -embeddings], axis=1)  # (N, tokens, D): [CLS] first
    assert score("knn_accuracy", hidden, np.array([0, 0, 1, 1])) == 1.0


def test_score_knn_accuracy_raises_when_one_row() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        score("knn_accuracy", np.zeros((1, 2)), np.zeros(1, dtype=np.int64))
