"""The bundle's fastText tokeniser: the same row ids as fasttext's own, for any text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert_model.runtime.fasttext_text import PADDING, FastTextText, fnv1a, split, top_k
from converters.fasttext_model import text_settings
from tests.fixtures.fasttext_models import WORDS, train_tiny


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    return train_tiny(tmp_path_factory.mktemp("ft"))


def test_fnv1a_sign_extends_bytes_like_fasttext():
    assert fnv1a("") == 2166136261
    assert fnv1a("a") == 0xE40C292C  # the 32-bit FNV-1a test vector
    assert fnv1a("é") != fnv1a("é".encode().decode("latin-1"))


def test_split_uses_fasttexts_whitespace_only():
    assert split(" a\tb\vc\fd\re\0f  g\u00a0h ") == ["a", "b", "c", "d", "e", "f", "g\u00a0h"]


@pytest.mark.parametrize("word", [*WORDS, "unseen", "ünséén", "a", "</s>", "🙂🙂🙂"])
def test_runtime_word_ids_match_fasttext_get_subwords(model, word: str):
    settings = text_settings(model)
    assert settings.word_ids(word) == [int(i) for i in model.get_subwords(word)[1]]


@pytest.mark.parametrize(
    "text",
    ["kalo mine ruto", "", "unseen words only", "__label__t1 kalo vévé", "été\t東京  x",
     "kalo </s> mine ruto", "__label__nothing emoji😀 naïve naïve naïve"],
)
def test_runtime_ids_average_to_fasttext_sentence_vector(model, text: str):
    settings = text_settings(model)
    ids = settings.ids(text)
    vector = np.asarray(model.get_input_matrix())[ids].mean(axis=0)
    assert np.allclose(vector, model.get_sentence_vector(text), atol=1e-6)


def test_runtime_batch_pads_with_minus_one_and_round_trips_json(model, tmp_path: Path):
    settings = text_settings(model)
    matrix = settings.batch(["kalo", "kalo mine ruto vévé"])
    assert matrix.dtype == np.int64 and (matrix[0, len(settings.ids("kalo")):] == PADDING).all()
    assert FastTextText.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="one line at a time"):
        settings.ids("two\nlines")


def test_top_k_orders_labels_like_predict():
    labels, values = top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2)[0]
    assert labels == ("b", "c") and values.tolist() == pytest.approx([0.7, 0.2])
    assert top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=-1, threshold=0.15)[0][0] == (
        "b", "c")
