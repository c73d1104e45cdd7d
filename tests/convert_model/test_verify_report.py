"""verify says what it checked: each variant as recorded and as re-run, figures per output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert_model.bundle.verify import check_data, verify
from tests.convert_model.test_cli import _assert_one_line_error, run_cli
from tests.fixtures.models import Zoo


@pytest.fixture(scope="module")
def bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "bundle"
    result = run_cli(model_zoo.custom_pt2, "--out", out, "-q", "--sweep", "off",
                     "--accuracy-budget", "int8.min_cosine=0.99999999")  # int8 fails: not kept
    assert result.returncode == 0, result.stderr
    return out


def test_verify_lists_each_variant_recorded_and_rerun(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    result = verify(bundle)
    assert result.ok
    by_name = {c.name: c for c in result.checks}
    assert set(by_name) == {v["name"] for v in manifest["variants"]}
    failed = [v["name"] for v in manifest["variants"] if v["status"] == "fail"]
    assert failed, "the int8 budget above is out of reach"
    for name in failed:
        assert by_name[name].recorded == "fail" and by_name[name].rerun == "not kept"
    assert by_name["fp32"].recorded == "pass" and by_name["fp32"].rerun == "pass"


def test_cli_verify_never_counts_failed_variants_as_within_budget(bundle: Path):
    result = run_cli("verify", bundle)
    assert result.returncode == 0, result.stderr
    assert "within budget" not in result.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    kept = sum(1 for v in manifest["variants"] if v["file"])
    assert f"{kept} of {len(manifest['variants'])} variant(s) re-run" in result.stdout
    assert "recorded fail  re-run not kept" in result.stdout


def test_cli_verify_data_prints_figures_per_output(bundle: Path, tmp_path: Path):
    rng = np.random.default_rng(7)
    rows = tmp_path / "rows.npz"
    np.savez(rows, features=rng.standard_normal((5, 12)).astype(np.float32),
             mask=np.ones((5, 12), np.float32))
    result = run_cli("verify", bundle, "--data", rows)
    assert result.returncode == 0, result.stderr
    assert f"re-run on {rows}" in result.stdout
    assert "output_0: max abs diff" in result.stdout and "min cosine" in result.stdout
    checked = check_data(bundle, rows)
    assert checked.checks and all(c.figures for c in checked.checks)


def test_cli_verify_data_rows_the_model_rejects_are_exit_2(bundle: Path, tmp_path: Path):
    rows = tmp_path / "ints.npz"
    np.savez(rows, features=np.ones((2, 12), np.int64), mask=np.ones((2, 12), np.int64))
    _assert_one_line_error(run_cli("verify", bundle, "--data", rows), "rejects these rows")
