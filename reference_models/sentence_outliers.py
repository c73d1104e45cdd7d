"""sentence-outliers: a MiniLM-sized BERT sentence encoder whose attention has outlier channels.

The encoder (6 layers, 384 hidden, 12 heads, 1536 intermediate: the size of the MiniLM
sentence models) keeps a random initialisation with the spread of trained weights
(``initializer_range`` 0.05, so each sub-layer moves the residual stream as a trained one
does), then gets outlier channels in every layer's attention (``reference_models.outliers``:
4 channels a layer, 10-50x), which leaves its fp32 outputs unchanged. On it, as on real
pretrained MiniLM weights, per-tensor dynamic int8 misses a 0.99 cosine budget by far and
per-channel int8 only just: the difficulty the int8 search is built for.

Handed over as a Hugging Face model folder (``BertModel``: the feature-extraction task, the
hidden states as output). Its task metric is the leave-one-out nearest-neighbour accuracy
of the [CLS] embeddings on sentences of four topics (each topic a set of words of its
language that its sentences favour), in four pseudo-languages; nothing is trained but the
tokenizer, so the build takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.outliers import OutlierConfig
from reference_models.registry import Progress, ReferenceModel, register
from reference_models.synthetic_text import Lexicon, lexicons, tokenizer_corpus

SEED = 20240517
LANGUAGE_CODES = ("en_XX", "de_DE", "ru_RU", "hi_IN")
LEXICON_SIZE = 600
TOPICS = 4
TOPIC_WORDS = 10  # per topic and language, from the rare half of the lexicon
TOPIC_SHARE = 0.5  # share of a sentence's words drawn from its topic's words
VOCAB_SIZE = 6_000
TOKENIZER_SENTENCES = 600  # per language
EVAL_SENTENCES = 300
EVAL_LENGTH = 64
MAX_LENGTH = 128
INITIALIZER_RANGE = 0.05
OUTLIERS = OutlierConfig(channels=4, min_factor=10.0, max_factor=50.0, seed=SEED)
MODEL_FOLDER = "model"
OUTLIERS_FILE = "outliers.json"


def sentences(
    rng: np.random.Generator, lexicon_list: tuple[Lexicon, ...], n: int
) -> tuple[list[str], np.ndarray]:
    """Sentences of 4-23 words, about half of them from the topic's ``TOPIC_WORDS`` words."""
    texts, topics = [], []
    for _ in range(n):
        lex = lexicon_list[int(rng.integers(len(lexicon_list)))]
        topic = int(rng.integers(TOPICS))
        length = int(rng.integers(4, 24))
        ranks = lex.ranks(rng, length, rare_fraction=0.2)
        own = LEXICON_SIZE // 2 + topic * TOPIC_WORDS + rng.integers(TOPIC_WORDS, size=length)
        ranks = np.where(rng.random(length) < TOPIC_SHARE, own, ranks)
        texts.append(lex.sentence([lex.words[r] for r in ranks]))
        topics.append(topic)
    return texts, np.array(topics, dtype=np.int64)


def encoder_config(vocab_size: int, pad_token_id: int) -> object:
    """The encoder's ``BertConfig``: MiniLM's size, trained weights' spread."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        initializer_range=INITIALIZER_RANGE,
        pad_token_id=pad_token_id,
    )


def build(folder: Path, progress: Progress) -> None:
    """Tokenizer and outlier encoder; write the model folder, eval set and samples."""
    from transformers import BertModel

    from reference_models.determinism import deterministic
    from reference_models.outliers import add_outliers
    from reference_models.tokenizer_training import bert_tokenizer

    rng = np.random.default_rng(SEED)
    lexicon_list = lexicons(size=LEXICON_SIZE, seed=SEED, codes=LANGUAGE_CODES)
    progress("training tokenizer")
    corpus = tokenizer_corpus(rng, lexicon_list, TOKENIZER_SENTENCES)
    tokenizer = bert_tokenizer(corpus, vocab_size=VOCAB_SIZE, model_max_length=MAX_LENGTH)
    eval_texts, eval_topics = sentences(rng, lexicon_list, EVAL_SENTENCES)
    with deterministic(SEED):
        model = BertModel(encoder_config(len(tokenizer), tokenizer.pad_token_id)).eval()
        progress("adding outlier channels")
        scaled = add_outliers(model.encoder, OUTLIERS)
    model.save_pretrained(folder / MODEL_FOLDER)
    tokenizer.save_pretrained(folder / MODEL_FOLDER)
    (folder / OUTLIERS_FILE).write_text(
        json.dumps([s.to_json() for s in scaled], indent=1) + "\n", encoding="utf-8")
    encoded = tokenizer(eval_texts, padding="max_length", max_length=EVAL_LENGTH,
                        return_tensors="np")
    if encoded["input_ids"].shape[1] != EVAL_LENGTH:
        raise RuntimeError(f"sentence-outliers: an eval sentence is longer than {EVAL_LENGTH}")
    write_eval(folder, {k: v.astype(np.int64) for k, v in encoded.items()}, eval_topics)
    write_samples(folder, [{"text": t, "topic": int(y)}
                           for t, y in zip(eval_texts[:8], eval_topics[:8], strict=True)])


REFERENCE = register(
    ReferenceModel(
        name="sentence-outliers",
        summary=(
            "MiniLM-sized BERT sentence encoder (6x384) with outlier channels in its "
            "attention, as pretrained weights have; the int8 benchmark"
        ),
        form="hf-model",
        version="1",
        checkpoint=MODEL_FOLDER,
        convert_options={"task": "feature-extraction"},
        metric="knn_accuracy",
        metric_output="last_hidden_state",
        chance=1.0 / TOPICS,
        builder=build,
    )
)
