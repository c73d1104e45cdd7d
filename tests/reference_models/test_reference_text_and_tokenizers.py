"""Synthetic multilingual text and the tokenizers trained on it: deterministic and well-formed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reference_models.synthetic_text import LANGUAGES, SCRIPTS, language, lexicons, make_lexicon
from reference_models.tokenizer_training import (
    BERT_SPECIAL_TOKENS,
    TokenizerRecipe,
    bert_tokenizer,
    mbart_tokenizer,
)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    rng = np.random.default_rng(0)
    lexicon_list = lexicons(size=300, seed=1)
    return [
        lex.random_sentence(rng, int(rng.integers(4, 12)), rare_fraction=0.3)
        for _ in range(200)
        for lex in lexicon_list
    ]


def test_make_lexicon_gives_the_same_distinct_words_for_the_same_seed() -> None:
    for lang in LANGUAGES:
        first, second = make_lexicon(lang, size=200, seed=7), make_lexicon(lang, size=200, seed=7)
        assert first.words == second.words
        assert len(set(first.words)) == 200


def test_lexicons_write_every_language_in_its_own_script() -> None:
    ranges = {
        "latin": ("a", "z"),
        "cyrillic": ("\u0400", "\u04ff"),
        "arabic": ("\u0600", "\u06ff"),
        "devanagari": ("\u0900", "\u097f"),
        "cjk": ("\u4e00", "\u9fff"),
    }
    assert set(ranges) == set(SCRIPTS)
    for lex in lexicons(size=50, seed=3):
        low, high = ranges[lex.language.script]
        assert all(low <= c <= high for word in lex.words for c in word), lex.language.code


def test_language_raises_naming_known_codes_when_code_unknown() -> None:
    with pytest.raises(ValueError, match="unknown language code 'xx_XX'.*en_XX"):
        language("xx_XX")


def test_ranks_raises_when_rare_fraction_is_outside_0_1() -> None:
    lex = make_lexicon(LANGUAGES[0], size=20, seed=0)
    with pytest.raises(ValueError, match="rare_fraction must be in"):
        lex.ranks(np.random.default_rng(0), 3, rare_fraction=1.5)


def test_bert_tokenizer_is_byte_identical_when_trained_twice(
    corpus: list[str], tmp_path: Path
) -> None:
    for run in ("a", "b"):
        bert_tokenizer(corpus, vocab_size=2000).save_pretrained(tmp_path / run)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_bert_tokenizer_puts_special_tokens_first_and_knows_every_character(
    corpus: list[str],
) -> None:
    tokenizer = bert_tokenizer(corpus, vocab_size=2000)
    assert tokenizer.convert_ids_to_tokens(list(range(len(BERT_SPECIAL_TOKENS)))) == list(
        BERT_SPECIAL_TOKENS
    )
    assert all(tokenizer.unk_token_id not in tokenizer(text)["input_ids"] for text in corpus[:200])
    pair = tokenizer(corpus[0], corpus[1])
    assert pair["input_ids"][0] == tokenizer.cls_token_id
    assert set(pair["token_type_ids"]) == {0, 1}


def test_mbart_tokenizer_is_byte_identical_when_trained_twice(
    corpus: list[str], tmp_path: Path
) -> None:
    for run in ("a", "b"):
        mbart_tokenizer(corpus, vocab_size=1500).save_pretrained(tmp_path / run)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_mbart_tokenizer_prefixes_the_language_code_and_ends_with_eos(corpus: list[str]) -> None:
    tokenizer = mbart_tokenizer(corpus, vocab_size=1500)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    tokenizer.src_lang = "ru_RU"
    ids = tokenizer(corpus[4])["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("ru_RU")
    assert ids[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"style": "unigram"}, "style must be 'bert' or 'sentencepiece'"),
        ({"vocab_size": 3}, "must exceed"),
        ({"unk_token": "<unk>"}, "must be one of the special tokens"),
    ],
)
def test_tokenizer_recipe_raises_naming_the_bad_value(
    overrides: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {
        "style": "bert",
        "vocab_size": 100,
        "special_tokens": BERT_SPECIAL_TOKENS,
        "unk_token": "[UNK]",
    }
    with pytest.raises(ValueError, match=message):
        TokenizerRecipe(**{**fields, **overrides})  # type: ignore[arg-type]
