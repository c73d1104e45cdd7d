"""A broken fp32 export is not optimised or timed, and the tracer's warning names the cause."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmarks.parity import compare_output
from optimizers.select import broken_graph
from tests.convert_model.test_cli import run_cli

ITEM_LOOP = '''
import torch
from torch import nn


class ItemLoop(nn.Module):
    """Loops as many times as a tensor's .item() says: tracing freezes the count."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        rows = int(x.abs().sum(dim=1).gt(-1.0).sum().item())
        y = x * self.scale
        for _ in range(rows):
            y = torch.roll(y, 1, dims=1) * 10.0
        return y
'''


def test_broken_graph_on_nan_shape_or_far_cosine():
    ref = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    assert broken_graph([compare_output("y", 0, ref, ref * 1.0001)]) is None
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert "NaN/Inf" in broken_graph([compare_output("y", 0, ref, nan)])
    assert "shape differs" in broken_graph([compare_output("y", 0, ref, ref[:1])])
    assert "min cosine" in broken_graph([compare_output("y", 1, ref, -ref)])


@pytest.fixture(scope="module")
def item_loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import safetensors.torch
    import torch

    folder = tmp_path_factory.mktemp("item-loop")
    source = folder / "item_loop.py"
    source.write_text(textwrap.dedent(ITEM_LOOP))
    safetensors.torch.save_file({"scale": torch.ones(1)}, str(folder / "w.safetensors"))
    return folder / "w.safetensors", source


def test_broken_fp32_graph_skips_optimising_and_names_the_item_call(item_loop, tmp_path):
    weights, source = item_loop
    out = tmp_path / "bundle"
    result = run_cli(weights, "--model-class", f"{source}:ItemLoop", "--input-spec",
                     "x:float32[batch,8]=3x8/1x8", "--out", out, "--sweep", "off")
    assert result.returncode == 1, result.stderr
    assert "the fp32 graph is broken" in result.stderr
    assert "skipping optimisation and timing" in result.stderr
    assert f"torchscript warned: {source}:14: Converting a tensor to a Python" in result.stderr
    assert "\x1b[" not in result.stderr, "no terminal escapes"
    assert "def forward(self" not in result.stderr, "no partial FX graph dumped"
    assert "GuardOnDataDependentSymNode" in result.stderr, "dynamo's cause, not its banner"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [v["name"] for v in manifest["variants"]] == ["fp32"], "nothing was optimised"
    assert manifest["variants"][0]["latency"] is None
    assert manifest["measurement"]["skipped"].startswith("the fp32 graph is broken")
    attempts = {a["strategy"]: a for a in manifest["export"]["attempts"]}
    assert any(".item()" in w or "Python number" in w for w in attempts["torchscript"]["warnings"])
