"""Outlier channels in a BERT's attention, added without changing what the model computes.

Pretrained BERTs carry a few hidden channels whose activations are 10-100x the others', and
weight rows to match; reference models trained for seconds have none, so int8 looks easier
on them than it is on real weights. This transform puts such channels into a BERT while its
fp32 outputs stay the same (to float rounding).

Rules, per chosen layer, for a few chosen channels ``c`` and a factor ``s`` (10-50):
- Value/output pair: row ``c`` of the value projection (weight and bias) times ``s``, column
  ``c`` of the attention output projection divided by ``s``. Attention mixes value vectors
  linearly per channel, so the context carries channel ``c`` at ``s`` times its size (the
  activation outlier at the output projection's input) and the output projection undoes it.
- Query/key pair: row ``c`` of the query projection times ``s``, row ``c`` of the key
  projection divided by ``s``: every query-key dot product is unchanged, while the query
  weights gain outlier rows and the key weights rows ``s`` times smaller than the rest
  (what one scale per weight tensor cannot hold).

Why not a LayerNorm's channels, the usual place of BERT's outliers: a LayerNorm's output
also feeds the residual sum that the next LayerNorm normalises over all channels, so no
change to the following Linear layers can undo a scaled channel there; the two pairs above
are the places inside a BERT layer where a per-channel scale can be undone exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, kw_only=True)
class OutlierConfig:
    """Which layers get outlier channels, how many per layer, and the range of their factors."""

    layers: tuple[int, ...] | None = None  # None: every layer
    channels: int = 4
    min_factor: float = 10.0
    max_factor: float = 50.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if not 1.0 < self.min_factor <= self.max_factor:
            raise ValueError(
                f"need 1 < min_factor <= max_factor, got {self.min_factor}, {self.max_factor}"
            )


@dataclass(frozen=True, kw_only=True)
class OutlierChannels:
    """What the transform did to one layer: the channels scaled and each one's factor."""

    layer: int
    channels: tuple[int, ...]
    factors: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (for the build's provenance)."""
        return {"layer": self.layer, "channels": list(self.channels),
                "factors": [round(f, 4) for f in self.factors]}


def add_outliers(encoder: Any, config: OutlierConfig) -> list[OutlierChannels]:
    """Scale channels in ``encoder`` (a ``BertModel``'s ``.encoder``) in place; see the rules.

    Returns what was scaled per layer. Channels and factors are drawn from ``config.seed``.
    """
    import torch

    layers: Sequence[Any] = encoder.layer
    chosen = range(len(layers)) if config.layers is None else config.layers
    bad = [i for i in chosen if not 0 <= i < len(layers)]
    if bad:
        raise ValueError(f"layers {bad} out of range; the encoder has {len(layers)}")
    rng = np.random.default_rng(config.seed)
    done = []
    with torch.no_grad():
        for index in chosen:
            attention = layers[index].attention
            width = attention.self.value.out_features
            if config.channels > width:
                raise ValueError(f"channels must be <= {width}, got {config.channels}")
            channels = np.sort(rng.choice(width, size=config.channels, replace=False))
            factors = rng.uniform(config.min_factor, config.max_factor, size=config.channels)
            rows = torch.from_numpy(channels)
            scale = torch.from_numpy(factors.astype(np.float32))
            _scale_rows(attention.self.value, rows, scale)
            attention.output.dense.weight[:, rows] /= scale
            _scale_rows(attention.self.query, rows, scale)
            _scale_rows(attention.self.key, rows, 1.0 / scale)
            done.append(OutlierChannels(layer=index, channels=tuple(int(c) for c in channels),
                                        factors=tuple(float(f) for f in factors)))
    return done


def _scale_rows(linear: torch.nn.Linear, rows: torch.Tensor, scale: torch.Tensor) -> None:
    """Multiply output channels ``rows`` of ``linear`` (weight rows and bias) by ``scale``."""
    linear.weight[rows] *= scale[:, None]
    if linear.bias is not None:
        linear.bias[rows] *= scale
