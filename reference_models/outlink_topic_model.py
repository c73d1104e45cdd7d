"""Outlink topic model: a fastText-style multi-label classifier over an article's outlinks.

This file is shipped as-is, as `outlink_topic.py`, beside the model's
state_dict: it is the "class that defines it" a converter is pointed at
(`--model-class outlink_topic.py:OutlinkTopicModel`). It imports only torch.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

NUM_BUCKETS = 200_000
PADDING_ID = 0
EMBEDDING_DIM = 50
NUM_TOPICS = 64
THRESHOLD = 0.5


def item_bucket(item: str, num_buckets: int = NUM_BUCKETS) -> int:
    """Hash an item id (a Wikidata QID such as "Q42") to its bucket, never the padding id."""
    digest = hashlib.blake2b(item.encode("utf-8"), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % (num_buckets - 1)


class OutlinkTopicModel(nn.Module):
    """Mean of hashed outlink embeddings, then a linear layer: one logit per topic.

    The math and the state_dict (`embedding.weight`, `classifier.weight`,
    `classifier.bias`) are those of `nn.EmbeddingBag(mode="mean",
    padding_idx=0)` over fixed-width bags; it is written as an embedding
    lookup and a masked mean because that exports to ONNX with both torch
    exporters (the TorchScript one cannot export `embedding_bag` with a
    padding index) as a plain Gather/ReduceSum graph, not a loop over bags.
    """

    def __init__(
        self,
        num_buckets: int = NUM_BUCKETS,
        embedding_dim: int = EMBEDDING_DIM,
        num_topics: int = NUM_TOPICS,
        padding_id: int = PADDING_ID,
    ) -> None:
        """Build the layers; the defaults are those of the shipped weights."""
        super().__init__()
        self.padding_id = padding_id
        self.embedding = nn.Embedding(num_buckets, embedding_dim, padding_idx=padding_id)
        self.classifier = nn.Linear(embedding_dim, num_topics)

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Topic logits (batch, topics) for item ids (batch, items) padded with the padding id.

        A topic is predicted when sigmoid(logit) > THRESHOLD, i.e. logit > 0.
        """
        present = (item_ids != self.padding_id).unsqueeze(-1).to(self.embedding.weight.dtype)
        summed = (self.embedding(item_ids) * present).sum(dim=1)
        # An all-padding row averages nothing: divide by at least one, giving a zero
        # vector, as EmbeddingBag does.
        return self.classifier(summed / present.sum(dim=1).clamp(min=1.0))
