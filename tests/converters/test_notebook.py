"""Notebooks in: cells run in a child process, the model comes back safely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convert_model import CheckpointError, UsageError, convert
from converters.notebook_runner import strip_magics

MODEL_CELL = (
    "class Net(torch.nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.l = torch.nn.Linear(4, 2)\n"
    "    def forward(self, x):\n"
    "        return self.l(x)\n"
    "model = Net().eval()\n"
)


def notebook(path: Path, *cells: str) -> Path:
    data = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# A researcher's notebook"},
            *(
                {
                    "cell_type": "code",
                    "metadata": {},
                    "execution_count": None,
                    "outputs": [],
                    "source": cell.splitlines(keepends=True),
                }
                for cell in cells
            ),
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_notebook_converts_and_skips_magics(tmp_path: Path):
    nb = notebook(
        tmp_path / "nb.ipynb",
        "%pip install torch\nimport torch\n!wget http://example",
        MODEL_CELL + "example_inputs = (torch.randn(3, 4),)\nopen('ran-here.txt', 'w').write('x')",
    )
    result = convert(nb, out=tmp_path / "b", precision="fp32")
    m = result.manifest
    assert m.source["form"] == "notebook" and m.export["strategy"] == "dynamo"
    assert m.variant("fp32").passed
    assert any("%pip install torch" in n and "!wget" in n for n in m.notes)
    assert (tmp_path / "ran-here.txt").is_file(), "cells run in the notebook's folder"


def test_notebook_object_and_inputs_by_name(tmp_path: Path):
    nb = notebook(
        tmp_path / "nb.ipynb",
        "import torch\n" + MODEL_CELL + "other = torch.nn.ReLU()\nbatch = torch.randn(2, 4)",
    )
    result = convert(
        nb, out=tmp_path / "b", precision="fp32", notebook_object="model", notebook_inputs="batch"
    )
    assert any("model 'model', example inputs from batch" in n for n in result.manifest.notes)


def test_notebook_input_spec_when_no_example_inputs(tmp_path: Path):
    nb = notebook(tmp_path / "nb.ipynb", "import torch\n" + MODEL_CELL)
    result = convert(nb, out=tmp_path / "b", precision="fp32", input_spec="x:float32[batch,4]=2x4")
    assert result.manifest.inputs[0]["name"] == "x"


@pytest.mark.parametrize(
    ("cells", "kwargs", "error", "message"),
    [
        (
            ["import torch\nx = 1\nraise ValueError('boom')"],
            {},
            CheckpointError,
            "cell 1, line 3 (raise ValueError('boom')) raised ValueError: boom",
        ),
        (["import torch\ndef f(:\n    pass"], {}, CheckpointError, "cell 1, line 2"),
        (["import torch\nx = 1"], {}, CheckpointError, "leaves no torch.nn.Module"),
        (
            ["import torch\na = torch.nn.Linear(2, 2)\nb = torch.nn.ReLU()"],
            {},
            CheckpointError,
            "several models in the namespace: a (Linear), b (ReLU); choose one with --object",
        ),
        (
            ["import torch\n" + MODEL_CELL],
            {"notebook_object": "missing"},
            UsageError,
            "defines no 'missing'",
        ),
        (["import torch\n" + MODEL_CELL], {}, CheckpointError, "no example inputs"),
        (
            ["import time\ntime.sleep(60)"],
            {"notebook_timeout": 3},
            CheckpointError,
            "timed out after 3s while running cell 1",
        ),
    ],
)
def test_notebook_bad_cases_are_clear_errors(tmp_path: Path, cells, kwargs, error, message):
    nb = notebook(tmp_path / "nb.ipynb", *cells)
    with pytest.raises(error) as info:
        convert(nb, out=tmp_path / "b", precision="fp32", **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "b").exists()


def test_notebook_not_json_is_a_clear_error(tmp_path: Path):
    nb = tmp_path / "broken.ipynb"
    nb.write_text("{ not json")
    with pytest.raises(CheckpointError, match="not a valid notebook"):
        convert(nb, out=tmp_path / "b")


@pytest.mark.parametrize(
    ("source", "kept", "skipped"),
    [
        ("%pip install x\nimport os", "\nimport os", ["%pip install x"]),
        ("!ls\nx = 1", "\nx = 1", ["!ls"]),
        ("%%bash\necho hi", "", ["%%bash"]),
        ("x = 1  # 100%", "x = 1  # 100%", []),
    ],
)
def test_strip_magics(source, kept, skipped):
    assert strip_magics(source) == (kept, skipped)


def test_pickle_never_runs_without_trust_pickle(tmp_path: Path):
    """Loading this pickle would create a marker file; without the flag it must not."""
    marker = tmp_path / "pwned"
    payload = tmp_path / "evil.pt"
    code = (
        "import os, torch\n"
        "class Evil:\n"
        "    def __reduce__(self):\n"
        f"        return (os.system, ('touch {marker}',))\n"
        f"torch.save({{'w': Evil()}}, {str(payload)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "convert_model.cli",
            str(payload),
            "--out",
            str(tmp_path / "o"),
            "--model-class",
            "torch.nn:Linear",
            "--input-spec",
            "x:float32[b,2]",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "--trust-pickle" in result.stderr
    assert not marker.exists(), "the pickle's code ran"
    assert not (tmp_path / "o").exists()
