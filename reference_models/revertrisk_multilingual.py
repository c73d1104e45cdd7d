"""revertrisk-multilingual: a small multilingual BERT giving the revert risk of an edit.

Synthetic task: in every language a few words are "vandal" words. An edit
that inserts one of them is reverted; an edit that inserts or removes
ordinary words is kept. Some original texts already contain a vandal word
and keep it through a good edit, so the model must compare the two texts,
not only look for the words. Handed over as a Hugging Face model folder
(`save_pretrained`, safetensors) with its WordPiece tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.registry import Progress, ReferenceModel, register
from reference_models.synthetic_text import Lexicon, lexicons, tokenizer_corpus

if TYPE_CHECKING:
    from transformers import BertForSequenceClassification, BertTokenizerFast

# torch and transformers are imported inside the functions that train:
# listing the registry stays instant.

SEED = 20240501
LEXICON_SIZE = 600
VANDAL_WORDS = 12  # per language, taken from the rare half of its lexicon
ORIGINAL_HAS_VANDAL_WORD = 0.15  # share of original texts that already contain one
VOCAB_SIZE = 6_000
TOKENIZER_SENTENCES = 2_500  # per language
TRAIN_PAIRS = 3_000
EVAL_PAIRS = 400
MAX_LENGTH = 128
EPOCHS = 3
BATCH_SIZE = 32
LEARNING_RATE = 1e-3

MODEL_FOLDER = "model"
LABELS = ("keep", "revert")


@dataclass(frozen=True, kw_only=True)
class EditPair:
    """One edit: the text before and after it, its language and whether it was reverted."""

    original: str
    edited: str
    language: str
    revert: bool


class _EditGenerator:
    """Edits in every language, half of them reverts."""

    def __init__(self, lexicon_list: tuple[Lexicon, ...]) -> None:
        self.lexicons = lexicon_list
        half = LEXICON_SIZE // 2
        # Vandal words are fixed rare words per language, spaced through the rare half.
        self.vandal = [
            lex.words[half :: half // VANDAL_WORDS][:VANDAL_WORDS] for lex in lexicon_list
        ]

    def pair(self, rng: np.random.Generator) -> EditPair:
        """One edit, in a language drawn at random."""
        which = int(rng.integers(len(self.lexicons)))
        lex, vandal = self.lexicons[which], self.vandal[which]
        ordinary = [
            w
            for w in (lex.words[r] for r in lex.ranks(rng, 40, rare_fraction=0.2))
            if w not in vandal
        ]
        words = ordinary[: int(rng.integers(5, 18))]
        if rng.random() < ORIGINAL_HAS_VANDAL_WORD:
            words.insert(int(rng.integers(len(words) + 1)), vandal[int(rng.integers(len(vandal)))])
        revert = bool(rng.random() < 0.5)
        edited = list(words)
        if revert:
            for _ in range(int(rng.integers(1, 3))):
                edited.insert(
                    int(rng.integers(len(edited) + 1)), vandal[int(rng.integers(len(vandal)))]
                )
        elif rng.random() < 0.5 and len(edited) > 4:
            for _ in range(int(rng.integers(1, 3))):
                del edited[int(rng.integers(len(edited)))]
        else:
            for word in ordinary[20 : 20 + int(rng.integers(1, 4))]:
                edited.insert(int(rng.integers(len(edited) + 1)), word)
        # A good edit sometimes rewrites ordinary words too, so "changed" alone never
        # means "revert".
        if rng.random() < 0.3:
            position = int(rng.integers(len(edited)))
            if edited[position] not in vandal:
                edited[position] = ordinary[-1]
        return EditPair(
            original=lex.sentence(words),
            edited=lex.sentence(edited),
            language=lex.language.code,
            revert=revert,
        )


def _encode(
    tokenizer: BertTokenizerFast, pairs: list[EditPair], padding: str
) -> dict[str, np.ndarray]:
    encoded = tokenizer(
        [p.original for p in pairs],
        [p.edited for p in pairs],
        truncation="longest_first",
        max_length=MAX_LENGTH,
        padding=padding,
        return_tensors="np",
    )
    return {k: v.astype(np.int64) for k, v in encoded.items()}


def _train(
    model: BertForSequenceClassification,
    tokenizer: BertTokenizerFast,
    pairs: list[EditPair],
    progress: Progress,
) -> None:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    steps = EPOCHS * -(-len(pairs) // BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARNING_RATE, total_steps=steps, pct_start=0.1
    )
    labels = torch.tensor([int(p.revert) for p in pairs])
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(1, EPOCHS + 1):
        order = torch.randperm(len(pairs), generator=generator).tolist()
        total, correct = 0.0, 0
        for start in range(0, len(pairs), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            # Pad each batch to its own longest pair: most pairs are far shorter than MAX_LENGTH.
            inputs = {
                k: torch.from_numpy(v)
                for k, v in _encode(tokenizer, [pairs[i] for i in batch], "longest").items()
            }
            out = model(**inputs, labels=labels[batch])
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(out.loss.detach()) * len(batch)
            correct += int((out.logits.argmax(-1) == labels[batch]).sum())
        progress(
            f"epoch {epoch}/{EPOCHS} loss {total / len(pairs):.4f} "
            f"train accuracy {correct / len(pairs):.3f}"
        )
    model.eval()


def build(folder: Path, progress: Progress) -> None:
    """Train tokenizer and model; write the model folder, eval set and samples into `folder`."""
    from transformers import BertConfig, BertForSequenceClassification

    from reference_models.determinism import deterministic
    from reference_models.tokenizer_training import bert_tokenizer

    rng = np.random.default_rng(SEED)
    lexicon_list = lexicons(size=LEXICON_SIZE, seed=SEED)
    progress("training tokenizer")
    corpus = tokenizer_corpus(rng, lexicon_list, TOKENIZER_SENTENCES)
    tokenizer = bert_tokenizer(corpus, vocab_size=VOCAB_SIZE, model_max_length=MAX_LENGTH)
    progress("generating edits")
    edits = _EditGenerator(lexicon_list)
    train_pairs = [edits.pair(rng) for _ in range(TRAIN_PAIRS)]
    eval_pairs = [edits.pair(rng) for _ in range(EVAL_PAIRS)]
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    with deterministic(SEED):
        model = BertForSequenceClassification(config)
        _train(model, tokenizer, train_pairs, progress)
    model.save_pretrained(folder / MODEL_FOLDER)
    tokenizer.save_pretrained(folder / MODEL_FOLDER)
    labels = np.array([int(p.revert) for p in eval_pairs], dtype=np.int64)
    write_eval(folder, _encode(tokenizer, eval_pairs, "max_length"), labels)
    write_samples(
        folder,
        [
            {"original": p.original, "edited": p.edited, "language": p.language, "revert": p.revert}
            for p in eval_pairs[:8]
        ],
    )


REFERENCE = register(
    ReferenceModel(
        name="revertrisk-multilingual",
        summary=(
            "multilingual BERT (2 layers, 128 hidden) giving P(revert) "
            "for an (original, edited) text pair"
        ),
        form="hf-model",
        version="2",
        checkpoint=MODEL_FOLDER,
        convert_options={"task": "text-classification"},
        metric="accuracy",
        metric_output="logits",
        chance=0.5,
        builder=build,
    )
)
