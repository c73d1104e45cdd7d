"""Outlier channels: added without changing fp32 outputs, and where int8 meets them."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from reference_models.outliers import OutlierConfig, add_outliers


def _bert() -> Any:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=32,
                        initializer_range=0.05)
    return BertModel(config).eval()


def _hidden(model: Any) -> torch.Tensor:
    ids = torch.randint(5, 100, (4, 16), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[2:, 10:] = 0
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


def test_add_outliers_keeps_fp32_outputs_when_channels_scaled() -> None:
    model = _bert()
    before = _hidden(model)
    value_before = model.encoder.layer[1].attention.self.value.weight.abs().max().item()
    scaled = add_outliers(model.encoder, OutlierConfig(channels=4, min_factor=10.0,
                                                       max_factor=50.0))
    after = _hidden(model)
    assert torch.abs(after - before).max().item() < 1e-4
    assert [s.layer for s in scaled] == [0, 1, 2]
    assert all(len(s.channels) == 4 and all(10.0 <= f <= 50.0 for f in s.factors)
               for s in scaled)
    value = model.encoder.layer[1].attention.self.value.weight.abs()
    assert value.max().item() > 5 * value_before, "value rows carry the outlier factor"
    rows = list(scaled[1].channels)
    key = model.encoder.layer[1].attention.self.key.weight.abs()
    assert key[rows].max() < key.max() / 5, "key rows shrunk by the same factor"


def test_add_outliers_touches_only_the_layers_named() -> None:
    model = _bert()
    untouched = model.encoder.layer[0].attention.self.value.weight.clone()
    scaled = add_outliers(model.encoder, OutlierConfig(layers=(2,), channels=2))
    assert [s.layer for s in scaled] == [2]
    assert torch.equal(model.encoder.layer[0].attention.self.value.weight, untouched)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"channels": 0}, "channels must be >= 1"),
    ({"min_factor": 1.0}, "1 < min_factor <= max_factor"),
    ({"min_factor": 20.0, "max_factor": 10.0}, "1 < min_factor <= max_factor"),
])
def test_outlier_config_rejects_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OutlierConfig(**kwargs)  # type: ignore[arg-type]


def test_add_outliers_rejects_layer_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"layers \[5\] out of range; the encoder has 3"):
        add_outliers(_bert().encoder, OutlierConfig(layers=(5,)))
