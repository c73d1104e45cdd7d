"""readability: a BERT-base-sized regression model, as a Hugging Face Trainer checkpoint folder.

The body (12 layers, 768 hidden, 12 heads) keeps its random initialisation:
what this model stands for is BERT-base's size and speed, the toolkit's
speed benchmark. Only the head (pooler and regressor) is trained, on body
features computed once, to predict a synthetic reading-difficulty score
(longer sentences and rarer words read harder); random features carry
enough about length and word identity for a clearly-above-chance rank
correlation.

The checkpoint folder holds what `Trainer._save_checkpoint` writes:
config.json, model.safetensors, tokenizer files, optimizer.pt,
scheduler.pt, rng_state.pth and trainer_state.json, each in the Trainer's
format. training_args.bin is left out: it is a pickled TrainingArguments,
which cannot be built without `accelerate`, and converters ignore it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.registry import Progress, ReferenceModel, register
from reference_models.synthetic_text import Lexicon, lexicons, tokenizer_corpus

if TYPE_CHECKING:
    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast
    from transformers.trainer_callback import TrainerState

# torch and transformers are imported inside the functions that train:
# listing the registry stays instant.

SEED = 20240502
LEXICON_SIZE = 800
VOCAB_SIZE = 8_000
TOKENIZER_SENTENCES = 1_500  # per language
TRAIN_SENTENCES = 800
EVAL_SENTENCES = 300
MAX_LENGTH = 128
# Eval inputs are padded to 64, not MAX_LENGTH: no sentence is longer, and
# BERT-base on CPU is slow enough that halving the padding matters to parity runs.
EVAL_LENGTH = 64
FEATURE_BATCH = 64
EPOCHS = 40
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
LOGGING_STEPS = 50


def difficulty(ranks: np.ndarray, lexicon_size: int) -> float:
    """Reading difficulty: log2 of the length in words, plus 4 x the share of rare-half words."""
    return float(np.log2(len(ranks)) + 4.0 * np.mean(ranks >= lexicon_size // 2))


def _sentences(
    rng: np.random.Generator, lexicon_list: tuple[Lexicon, ...], n: int
) -> tuple[list[str], np.ndarray]:
    texts, scores = [], []
    for _ in range(n):
        lex = lexicon_list[int(rng.integers(len(lexicon_list)))]
        ranks = lex.ranks(rng, int(rng.integers(3, 25)), rare_fraction=float(rng.uniform(0.0, 0.7)))
        texts.append(lex.sentence([lex.words[r] for r in ranks]))
        scores.append(difficulty(ranks, LEXICON_SIZE))
    return texts, np.array(scores, dtype=np.float32)


def _cls_features(
    model: BertForSequenceClassification, tokenizer: BertTokenizerFast, texts: list[str]
) -> torch.Tensor:
    """The body's last hidden state at [CLS] for each text: what the head reads."""
    import torch

    lengths = [
        len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    ]
    # Batches of similar lengths: BERT-base on CPU is the slow part of this build, so pad little.
    order = np.argsort(lengths, kind="stable")
    features = torch.empty(len(texts), model.config.hidden_size)
    with torch.no_grad():
        for start in range(0, len(texts), FEATURE_BATCH):
            rows = order[start : start + FEATURE_BATCH]
            batch = tokenizer(
                [texts[i] for i in rows],
                truncation=True,
                max_length=MAX_LENGTH,
                padding="longest",
                return_tensors="pt",
            )
            features[torch.from_numpy(rows)] = model.bert(**batch).last_hidden_state[:, 0]
    return features


def _train_head(
    model: BertForSequenceClassification,
    features: torch.Tensor,
    scores: np.ndarray,
    progress: Progress,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, TrainerState]:
    """Train pooler and regressor as the Trainer would: AdamW, two groups, linear schedule."""
    import torch
    from transformers.optimization import get_linear_schedule_with_warmup
    from transformers.trainer_callback import TrainerControl, TrainerState

    head = {f"bert.pooler.{n}": p for n, p in model.bert.pooler.named_parameters()}
    head.update({f"classifier.{n}": p for n, p in model.classifier.named_parameters()})
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in head.items() if not n.endswith("bias")], "weight_decay": 0.0},
            {"params": [p for n, p in head.items() if n.endswith("bias")], "weight_decay": 0.0},
        ],
        lr=LEARNING_RATE,
    )
    steps_per_epoch = -(-len(features) // BATCH_SIZE)
    max_steps = EPOCHS * steps_per_epoch
    scheduler = get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=0, num_training_steps=max_steps
    )
    targets = torch.from_numpy(scores)
    generator = torch.Generator().manual_seed(SEED)
    log_history: list[dict[str, float]] = []
    model.train()
    step, window = 0, 0.0
    for epoch in range(EPOCHS):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            prediction = model.classifier(
                model.dropout(model.bert.pooler(features[rows].unsqueeze(1)))
            ).squeeze(-1)
            loss = torch.nn.functional.mse_loss(prediction, targets[rows])
            optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(list(head.values()), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            window += float(loss.detach())
            if step % LOGGING_STEPS == 0:
                log_history.append(
                    {
                        "epoch": round(step / steps_per_epoch, 4),
                        "grad_norm": float(grad_norm),
                        "learning_rate": scheduler.get_last_lr()[0],
                        "loss": round(window / LOGGING_STEPS, 4),
                        "step": step,
                    }
                )
                window = 0.0
        if (epoch + 1) % 10 == 0:
            progress(f"head epoch {epoch + 1}/{EPOCHS} loss {float(loss.detach()):.4f}")
    model.eval()
    state = TrainerState(
        epoch=float(EPOCHS),
        global_step=step,
        max_steps=max_steps,
        logging_steps=LOGGING_STEPS,
        eval_steps=500,
        save_steps=max_steps,
        train_batch_size=BATCH_SIZE,
        num_train_epochs=EPOCHS,
        log_history=log_history,
        # What the Trainer records when it saves at the last step; it passes its
        # TrainerControl here too, which the annotation (callbacks only) leaves out.
        stateful_callbacks=[TrainerControl(should_save=True, should_training_stop=True)],  # type: ignore[list-item]
    )
    return optimizer, scheduler, state


def build(folder: Path, progress: Progress) -> None:
    """Train tokenizer and head; write `checkpoint-N/`, eval set and samples into `folder`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from reference_models.determinism import deterministic
    from reference_models.tokenizer_training import bert_tokenizer

    rng = np.random.default_rng(SEED)
    lexicon_list = lexicons(size=LEXICON_SIZE, seed=SEED)
    progress("training tokenizer")
    corpus = tokenizer_corpus(rng, lexicon_list, TOKENIZER_SENTENCES)
    tokenizer = bert_tokenizer(corpus, vocab_size=VOCAB_SIZE, model_max_length=MAX_LENGTH)
    train_texts, train_scores = _sentences(rng, lexicon_list, TRAIN_SENTENCES)
    eval_texts, eval_scores = _sentences(rng, lexicon_list, EVAL_SENTENCES)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
        problem_type="regression",
        id2label={0: "difficulty"},
        label2id={"difficulty": 0},
    )
    # The frozen body's forward pass is the slow part: it may use every thread,
    # its results being the same on one thread or several (checked for this
    # model); the head trains on one thread like the other reference models.
    with deterministic(SEED, threads=None):
        progress("initialising BERT-base body")
        model = BertForSequenceClassification(config).eval()
        progress(f"computing body features for {len(train_texts)} sentences")
        features = _cls_features(model, tokenizer, train_texts)
    with deterministic(SEED):
        optimizer, scheduler, state = _train_head(model, features, train_scores, progress)
        cpu_rng_state = torch.random.get_rng_state()
    checkpoint = folder / f"checkpoint-{state.global_step}"
    progress(f"writing {checkpoint.name}")
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    torch.save(optimizer.state_dict(), checkpoint / "optimizer.pt")
    torch.save(scheduler.state_dict(), checkpoint / "scheduler.pt")
    # The Trainer records each global generator; fresh seeded ones stand in for
    # Python's and numpy's.
    torch.save(
        {
            "python": random.Random(SEED).getstate(),
            "numpy": np.random.RandomState(SEED).get_state(),
            "cpu": cpu_rng_state,
        },
        checkpoint / "rng_state.pth",
    )
    state.save_to_json(str(checkpoint / "trainer_state.json"))
    encoded = tokenizer(
        eval_texts, padding="max_length", max_length=EVAL_LENGTH, return_tensors="np"
    )
    if encoded["input_ids"].shape[1] != EVAL_LENGTH:
        raise RuntimeError(
            f"readability: an eval sentence is longer than {EVAL_LENGTH} tokens; raise EVAL_LENGTH"
        )
    write_eval(folder, {k: v.astype(np.int64) for k, v in encoded.items()}, eval_scores)
    write_samples(
        folder,
        [
            {"text": t, "difficulty": float(s)}
            for t, s in zip(eval_texts[:8], eval_scores[:8], strict=True)
        ],
    )


CHECKPOINT_STEP = EPOCHS * -(-TRAIN_SENTENCES // BATCH_SIZE)

REFERENCE = register(
    ReferenceModel(
        name="readability",
        summary=(
            "BERT-base-sized regression model (12x768, random body, trained head) "
            "scoring reading difficulty; the speed benchmark"
        ),
        form="hf-trainer-checkpoint",
        version="2",
        checkpoint=f"checkpoint-{CHECKPOINT_STEP}",
        convert_options={"task": "text-classification"},
        metric="spearman",
        metric_output="logits",
        chance=0.0,
        builder=build,
    )
)
