"""Token-level outputs compared on real positions: padding never counts as output."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.masking import mask_inputs, masked_outputs
from benchmarks.parity import DEFAULT_BUDGETS, OutputParity, compare, failures
from tests.fixtures.models import Zoo


@pytest.fixture(scope="module")
def padded_bert(model_zoo: Zoo) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A real tiny BERT run on a padded batch: inputs and its outputs."""
    import torch
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(model_zoo.bert)
    model = BertModel.from_pretrained(model_zoo.bert).eval()
    batch = tokenizer(["a short one", "a much longer sentence with many more words in it"],
                      padding=True, return_tensors="np")
    inputs = {k: np.asarray(v, np.int64) for k, v in batch.items()}
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    outputs = {"last_hidden_state": out.last_hidden_state.numpy(),
               "pooler_output": out.pooler_output.numpy()}
    assert not inputs["attention_mask"].all(), "the batch must be padded"
    return inputs, outputs


def test_mask_inputs_takes_attention_mask_and_2d_integer_masks_only():
    inputs = {"input_ids": np.ones((2, 4), np.int64),
              "decoder_attention_mask": np.ones((2, 3), np.int64),
              "attention_mask": np.ones((2, 4), np.int64),
              "mask": np.ones((2, 4), np.float32)}  # a float feature, not a mask
    assert list(mask_inputs(inputs)) == ["attention_mask", "decoder_attention_mask"]


def test_compare_passes_when_only_padding_differs(padded_bert):
    inputs, outputs = padded_bert
    candidate = {k: v.copy() for k, v in outputs.items()}
    pad = inputs["attention_mask"] == 0
    candidate["last_hidden_state"][pad] = 123.0  # garbage where serving never reads
    records = compare(outputs, candidate, 0, inputs)
    assert failures(records, DEFAULT_BUDGETS["fp32"]) == []
    hidden = records[0]
    assert hidden.masked_by == "attention_mask" and records[1].masked_by is None
    assert hidden.real_rows == int(inputs["attention_mask"].sum())
    assert [e["max_abs_diff"] for e in hidden.per_example] == [0.0, 0.0]
    assert masked_outputs(inputs, outputs) == {"last_hidden_state": "attention_mask"}
    unmasked = compare(outputs, candidate, 0)
    assert failures(unmasked, DEFAULT_BUDGETS["fp32"]), "counting padding, it would fail"


def test_compare_fails_when_a_real_token_differs(padded_bert):
    inputs, outputs = padded_bert
    candidate = {k: v.copy() for k, v in outputs.items()}
    candidate["last_hidden_state"][0, 1] *= -1.0  # a real token of the short example
    (hidden, _) = compare(outputs, candidate, 0, inputs)
    lines = failures([hidden], DEFAULT_BUDGETS["int8"])
    assert lines and "min cosine" in lines[0]
    assert hidden.per_example[0]["min_cosine"] < 0 < hidden.per_example[1]["min_cosine"]


def test_compare_nan_in_padding_still_fails(padded_bert):
    inputs, outputs = padded_bert
    candidate = {k: v.copy() for k, v in outputs.items()}
    candidate["last_hidden_state"][inputs["attention_mask"] == 0] = np.nan
    (hidden, _) = compare(outputs, candidate, 0, inputs)
    assert hidden.max_abs_diff == 0.0 and hidden.nonfinite > 0
    assert "NaN/Inf" in failures([hidden], DEFAULT_BUDGETS["int8"])[0]


def test_output_parity_round_trips_masking_fields(padded_bert):
    inputs, outputs = padded_bert
    (hidden, _) = compare(outputs, outputs, 0, inputs)
    assert OutputParity.from_json(hidden.to_json()) == hidden


def test_compare_token_logits_top1_counts_real_tokens_only():
    mask = np.array([[1, 1, 0, 0]], np.int64)
    ref = np.zeros((1, 4, 3), np.float32)
    ref[..., 0] = 1.0
    cand = ref.copy()
    cand[0, 2:, 1] = 5.0  # padded positions pick another class
    (record,) = compare({"logits": ref}, {"logits": cand}, 0, {"attention_mask": mask})
    assert record.top1_agreement == 1.0
    assert failures([record], DEFAULT_BUDGETS["int8"]) == []


def test_masked_outputs_skip_outputs_without_the_sequence_axis():
    inputs = {"attention_mask": np.ones((2, 5), np.int64)}
    outputs = {"logits": np.zeros((2, 3)), "tokens": np.zeros((2, 5, 4))}
    assert masked_outputs(inputs, outputs) == {"tokens": "attention_mask"}
