"""A small real conversion with a sweep, shared by the report, plot and compare tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.latency import LatencyConfig
from benchmarks.sweep import SweepConfig
from tests.fixtures.models import Zoo

FAST_LATENCY = LatencyConfig(warmup=1, rounds=5)
SMALL_SWEEP = SweepConfig(batch_sizes=(1, 2), seq_lens=(8, 16), warmup=0, rounds=2)


@pytest.fixture(scope="session")
def swept_bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT converted under --precision auto with a small sweep: a full bundle."""
    from convert_model import convert

    out = tmp_path_factory.mktemp("swept") / "bert-onnx"
    convert(model_zoo.bert, out=out, latency=FAST_LATENCY, sweep=SMALL_SWEEP)
    return out
