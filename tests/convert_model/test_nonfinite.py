"""NaN/Inf in the original stops the conversion; in a bundle, verify finds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from convert_model.bundle.verify import verify
from tests.convert_model.test_cli import _assert_one_line_error, run_cli
from tests.fixtures.models import Zoo


def _nan_eps_bert(model_zoo: Zoo, tmp_path: Path) -> Path:
    folder = tmp_path / "nan-bert"
    shutil.copytree(model_zoo.bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config["layer_norm_eps"] = float("nan")
    (folder / "config.json").write_text(json.dumps(config))  # json writes NaN, as HF does
    return folder


def test_cli_exits_2_when_the_original_outputs_nan(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    result = run_cli(_nan_eps_bert(model_zoo, tmp_path), "--out", out, "--sweep", "off", "-q")
    _assert_one_line_error(result, "the original model's output 'logits' holds NaN/Inf",
                           "layer_norm_eps")
    assert not out.exists(), "no half-written bundle"


def test_verify_fails_when_a_variant_outputs_nan(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    assert run_cli(model_zoo.custom_pt2, "--out", out, "-q", "--sweep", "off").returncode == 0
    references = out / "reference_outputs.npz"
    with np.load(references) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(iter(arrays))
    arrays[key] = np.full_like(arrays[key], np.nan)
    np.savez(references, **arrays)
    manifest = json.loads((out / "manifest.json").read_text())
    from convert_model.core.hashing import sha256_file

    manifest["files"]["reference_outputs.npz"] = sha256_file(references)
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = verify(out)
    assert not result.ok
    assert any("NaN/Inf" in line for line in result.problems), result.problems
