"""outlink-topic: a fastText-style multi-label topic model, as a state_dict plus its class file.

Synthetic task: each of 64 topics has its own pool of Wikidata-like items;
an article about one to three topics links mostly to items from those
topics' pools, and to a few random items. The model sees the hashed buckets
of an article's outlinks and predicts its topics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.registry import Progress, ReferenceModel, register

if TYPE_CHECKING:
    from reference_models.outlink_topic_model import OutlinkTopicModel

# torch is imported inside the functions that train: listing the registry stays instant.

SEED = 20240503
# The shipped class's defaults (checked when building): the converter builds it with no arguments.
NUM_BUCKETS = 200_000
NUM_TOPICS = 64
PADDING_ID = 0
ITEMS_PER_ARTICLE = 32  # bag width: an article's outlinks, padded with the padding id
POOL_SIZE = 150  # items characteristic of one topic
NOISE_POOL_SIZE = 20_000  # items that belong to no topic
ON_TOPIC = 0.8  # share of an article's outlinks drawn from its topics' pools
TRAIN_ARTICLES = 20_000
EVAL_ARTICLES = 400
EPOCHS = 6
BATCH_SIZE = 128
LEARNING_RATE = 0.02

WEIGHTS_FILE = "outlink_topic.safetensors"
CLASS_FILE = "outlink_topic.py"
TOPICS_FILE = "topics.json"

_AREAS = (
    "Culture",
    "Geography",
    "History_and_Society",
    "STEM",
    "Arts",
    "Economy",
    "Biography",
    "Nature",
)
_FIELDS = ("General", "Media", "Politics", "Sports", "Science", "Technology", "Regions", "People")
TOPICS = tuple(f"{area}.{field}" for area in _AREAS for field in _FIELDS)


def _qid_buckets(qids: np.ndarray) -> np.ndarray:
    from reference_models.outlink_topic_model import item_bucket

    return np.array([item_bucket(f"Q{q}") for q in qids.ravel()], dtype=np.int64).reshape(
        qids.shape
    )


class _World:
    """The items of each topic, the topic-free items, and their hashed buckets."""

    def __init__(self, rng: np.random.Generator) -> None:
        # Distinct QIDs from Q1..Q50000000 (drawn without building that range).
        qids = 1 + rng.choice(
            50_000_000, size=NUM_TOPICS * POOL_SIZE + NOISE_POOL_SIZE, replace=False
        )
        self.topic_qids = qids[: NUM_TOPICS * POOL_SIZE].reshape(NUM_TOPICS, POOL_SIZE)
        self.noise_qids = qids[NUM_TOPICS * POOL_SIZE :]
        self.topic_buckets = _qid_buckets(self.topic_qids)
        self.noise_buckets = _qid_buckets(self.noise_qids)

    def articles(
        self, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """`n` articles: 0-padded bucket ids (n, ITEMS_PER_ARTICLE), topics (n, 64), QIDs."""
        ids = np.full((n, ITEMS_PER_ARTICLE), PADDING_ID, dtype=np.int64)
        labels = np.zeros((n, NUM_TOPICS), dtype=np.int64)
        qids: list[list[str]] = []
        for row in range(n):
            topics = rng.choice(
                NUM_TOPICS, size=int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])), replace=False
            )
            labels[row, topics] = 1
            count = int(rng.integers(6, ITEMS_PER_ARTICLE + 1))
            on_topic = rng.random(count) < ON_TOPIC
            topic_of_item = rng.choice(topics, size=count)
            pool_index = rng.integers(POOL_SIZE, size=count)
            noise_index = rng.integers(NOISE_POOL_SIZE, size=count)
            ids[row, :count] = np.where(
                on_topic,
                self.topic_buckets[topic_of_item, pool_index],
                self.noise_buckets[noise_index],
            )
            qids.append(
                [
                    f"Q{self.topic_qids[t, p] if on else self.noise_qids[z]}"
                    for on, t, p, z in zip(
                        on_topic, topic_of_item, pool_index, noise_index, strict=True
                    )
                ]
            )
        return ids, labels, qids


def train(ids: np.ndarray, labels: np.ndarray, progress: Progress) -> OutlinkTopicModel:
    """Train the model with binary cross-entropy per topic (call inside `deterministic`)."""
    import torch

    from reference_models.outlink_topic_model import OutlinkTopicModel

    model = OutlinkTopicModel()
    shape = (model.embedding.num_embeddings, model.classifier.out_features, model.padding_id)
    if shape != (NUM_BUCKETS, NUM_TOPICS, PADDING_ID):
        raise RuntimeError(
            f"outlink_topic_model.py's defaults {shape} differ from outlink_topic.py's "
            f"{(NUM_BUCKETS, NUM_TOPICS, PADDING_ID)}"
        )
    # fastText's initialisation: small uniform vectors, so the many items seen
    # only a few times add little noise to an article's mean.
    bound = 1.0 / model.embedding.embedding_dim
    with torch.no_grad():
        model.embedding.weight.uniform_(-bound, bound)
        model.embedding.weight[PADDING_ID] = 0.0
    # A batch touches a few thousand of the 200k rows: sparse gradients and
    # SparseAdam update only those, instead of all 10M parameters per step.
    model.embedding.sparse = True
    optimizers = (
        torch.optim.SparseAdam([model.embedding.weight], lr=LEARNING_RATE),
        torch.optim.Adam(model.classifier.parameters(), lr=LEARNING_RATE),
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x, y = torch.from_numpy(ids), torch.from_numpy(labels).float()
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(1, EPOCHS + 1):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            loss = loss_fn(model(x[batch]), y[batch])
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            total += float(loss.detach()) * len(batch)
        progress(f"epoch {epoch}/{EPOCHS} loss {total / len(x):.4f}")
    model.embedding.sparse = False
    return model.eval()


def build(folder: Path, progress: Progress) -> None:
    """Write state_dict, class file, topic names, eval set and samples into `folder`."""
    from safetensors.torch import save_file

    from reference_models import outlink_topic_model
    from reference_models.determinism import deterministic

    rng = np.random.default_rng(SEED)
    progress("generating articles")
    world = _World(rng)
    train_ids, train_labels, _ = world.articles(rng, TRAIN_ARTICLES)
    eval_ids, eval_labels, eval_qids = world.articles(rng, EVAL_ARTICLES)
    with deterministic(SEED):
        model = train(train_ids, train_labels, progress)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE)
    )
    (folder / CLASS_FILE).write_text(
        Path(outlink_topic_model.__file__).read_text(encoding="utf-8"), encoding="utf-8"
    )
    (folder / TOPICS_FILE).write_text(json.dumps(list(TOPICS), indent=2) + "\n", encoding="utf-8")
    write_eval(folder, {"item_ids": eval_ids}, eval_labels)
    write_samples(
        folder,
        [
            {
                "outlinks": qids,
                "item_ids": [int(i) for i in eval_ids[row] if i != PADDING_ID],
                "topics": [TOPICS[t] for t in np.flatnonzero(eval_labels[row])],
            }
            for row, qids in enumerate(eval_qids[:5])
        ],
    )


REFERENCE = register(
    ReferenceModel(
        name="outlink-topic",
        summary=(
            "fastText-style multi-label topic model over an article's hashed outlinks "
            "(200k buckets x 50 -> 64 topics)"
        ),
        form="state-dict",
        version="2",
        checkpoint=WEIGHTS_FILE,
        convert_options={
            "model_class": f"{CLASS_FILE}:OutlinkTopicModel",
            "input_spec": (
                f"item_ids:int64[batch,items]=1x{ITEMS_PER_ARTICLE}/4x16@0..{NUM_BUCKETS}"
            ),
        },
        metric="micro_f1",
        metric_output="output",  # its forward returns one tensor, which converters name "output"
        # Predicting every topic for every article gives micro-F1 = 2p / (1 + p),
        # p = 1.65 / 64 topics per article: 0.05; rounded up.
        chance=0.06,
        builder=build,
    )
)
