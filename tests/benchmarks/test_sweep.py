"""The sweep: which points, inputs tiled from one example, every runner at every point."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.sweep import SweepConfig, plan_points, point_inputs, run_sweep, sweep_axes

TEXT_AXES = {
    "input_ids": {0: "batch_size", 1: "sequence_length"},
    "attention_mask": {0: "batch_size", 1: "sequence_length"},
}
IMAGE_AXES = {"pixel_values": {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"}}


def test_sweep_axes_finds_batch_and_sequence_but_not_image_axes():
    assert sweep_axes(TEXT_AXES) == ("batch_size", "sequence_length")
    assert sweep_axes(IMAGE_AXES) == ("batch_size", None)
    assert sweep_axes({"item_ids": {0: "batch", 1: "items"}}) == ("batch", "items")
    assert sweep_axes({"x": {}}) == (None, None)


def test_plan_points_caps_sequence_lengths_at_the_model_limit():
    config = SweepConfig(batch_sizes=(1, 4), seq_lens=(16, 64, 512))
    assert plan_points(config, TEXT_AXES, max_seq_len=128) == [(1, 16), (4, 16), (1, 64), (4, 64)]
    assert plan_points(SweepConfig(seq_lens=(256,)), TEXT_AXES, max_seq_len=128)[0] == (1, 128)


def test_plan_points_sweeps_images_over_batch_only_and_fixed_batch_not_at_all():
    assert plan_points(SweepConfig(batch_sizes=(1, 8)), IMAGE_AXES) == [(1, None), (8, None)]
    assert plan_points(SweepConfig(), {"x": {}}) == [(1, None)]


def test_point_inputs_tiles_and_truncates_along_dynamic_axes():
    ids = np.arange(10, dtype=np.int64).reshape(1, 10)
    base = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    longer = point_inputs(base, TEXT_AXES, 3, 25)
    assert longer["input_ids"].shape == (3, 25) and longer["attention_mask"].shape == (3, 25)
    assert longer["input_ids"][2, 12] == 2, "tiled: position 12 repeats position 2"
    shorter = point_inputs(base, TEXT_AXES, 1, 4)
    assert shorter["input_ids"].tolist() == [[0, 1, 2, 3]]
    pixels = np.zeros((2, 3, 8, 8), np.float32)
    assert point_inputs({"pixel_values": pixels}, IMAGE_AXES, 5, None)["pixel_values"].shape == (
        5,
        3,
        8,
        8,
    )


def test_run_sweep_measures_every_runner_and_records_a_point_it_cannot_take():
    def limited(feed):
        if feed["input_ids"].shape[1] > 8:
            raise ValueError("sequence longer than 8\nsecond line")
        return feed

    runners = {"original": lambda feed: feed, "limited": limited}
    base = {"input_ids": np.ones((1, 4), np.int64), "attention_mask": np.ones((1, 4), np.int64)}
    config = SweepConfig(batch_sizes=(1, 2), seq_lens=(8, 16), warmup=0, rounds=2, footprint=False)
    seen = []
    result = run_sweep(runners, base, TEXT_AXES, config, threads=1, on_point=seen.append)
    assert [(p.batch_size, p.seq_len) for p in result.points] == [(1, 8), (2, 8), (1, 16), (2, 16)]
    assert seen == ["batch 1 × seq 8", "batch 2 × seq 8", "batch 1 × seq 16", "batch 2 × seq 16"]
    assert set(result.points[0].latency) == {"original", "limited"}
    assert result.points[0].latency["limited"].batch_size == 1
    assert result.points[2].errors == {"limited": "ValueError: sequence longer than 8"}
    assert result.points[2].speedup("limited") is None and result.points[0].speedup("limited")
    assert result.runners() == ["original", "limited"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_sizes": ()}, "batch_sizes must be a non-empty tuple"),
        ({"batch_sizes": [1, 2]}, "batch_sizes must be a non-empty tuple"),
        ({"seq_lens": (16, 0)}, r"seq_lens must hold ints >= 1, got \[0\]"),
        ({"rounds": 0}, "rounds must be >= 1, got 0"),
        ({"warmup": -1}, "warmup must be >= 0"),
        ({"max_seconds": 0}, "max_seconds must be > 0"),
    ],
)
def test_sweep_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SweepConfig(**kwargs)


def test_sweep_config_rejects_unknown_fields():
    with pytest.raises(TypeError):
        SweepConfig(batch=(1,))  # type: ignore[call-arg]
