"""The command line as a user meets it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.models import CUSTOM_SPEC, Zoo


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "convert_model.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_cli_help_does_not_import_torch():
    code = (
        "import sys; from convert_model import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--input-spec" in result.stdout


def test_cli_converts_and_verifies(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    result = run_cli(
        model_zoo.custom_safetensors,
        "--target",
        "onnx",
        "--out",
        out,
        "--model-class",
        f"{model_zoo.model_file}:TinyTagger",
        "--input-spec",
        CUSTOM_SPEC,
    )
    assert result.returncode == 0, result.stderr
    assert f"bundle: {out}" in result.stdout
    assert "[3/6] check fp32 parity" in result.stderr
    assert "output_0: max abs diff" in result.stderr
    assert "recommended:" in result.stdout
    assert json.loads((out / "manifest.json").read_text())["export"]["strategy"] == "dynamo"
    verified = run_cli("verify", out)
    assert verified.returncode == 0 and "ok" in verified.stdout


def test_cli_verify_exits_1_on_tampered_bundle(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    assert run_cli(model_zoo.custom_pt2, "--out", out, "-q").returncode == 0
    data = bytearray((out / "model.onnx").read_bytes())
    data[-5] ^= 0xFF
    (out / "model.onnx").write_bytes(bytes(data))
    result = run_cli("verify", out)
    assert result.returncode == 1
    assert "model.onnx: sha256 differs" in result.stderr


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("convert-model: error")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_missing_checkpoint_is_exit_2(tmp_path: Path):
    missing = tmp_path / "nope.safetensors"
    result = run_cli(missing, "--out", tmp_path / "out")
    _assert_one_line_error(result, str(missing), "no such file")
    assert not (tmp_path / "out").exists()


def test_cli_existing_out_needs_force(model_zoo: Zoo, tmp_path: Path):
    out = tmp_path / "bundle"
    first = run_cli(model_zoo.custom_pt2, "--out", out, "-q", "--precision", "fp32",
                    "--sweep", "off")
    assert first.returncode == 0, first.stderr
    (out / "keep.txt").write_text("stale")
    result = run_cli(model_zoo.custom_pt2, "--out", out)
    _assert_one_line_error(result, str(out), "--force")
    assert (out / "keep.txt").read_text() == "stale"
    forced = run_cli(model_zoo.custom_pt2, "--out", out, "--force", "-q")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists() and (out / "manifest.json").is_file()


def test_cli_force_never_replaces_a_folder_that_is_not_a_bundle(model_zoo: Zoo,
                                                                tmp_path: Path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    result = run_cli(model_zoo.custom_pt2, "--out", out, "--force")
    _assert_one_line_error(result, str(out), "not a convert-model bundle")
    assert (out / "keep.txt").read_text() == "user data"


def test_cli_state_dict_without_class_is_exit_2(model_zoo: Zoo, tmp_path: Path):
    result = run_cli(
        model_zoo.custom_safetensors, "--out", tmp_path / "o", "--input-spec", CUSTOM_SPEC
    )
    _assert_one_line_error(result, "--model-class")
    assert not (tmp_path / "o").exists()


def test_cli_pickled_module_refused_without_trust_pickle(model_zoo: Zoo, tmp_path: Path):
    result = run_cli(
        model_zoo.pickled_module, "--out", tmp_path / "o", "--input-spec", "x:float32[b,12]"
    )
    _assert_one_line_error(result, "--trust-pickle")
    trusted = run_cli(
        model_zoo.pickled_module,
        "--out",
        tmp_path / "o",
        "--input-spec",
        "x:float32[b,12]",
        "--trust-pickle",
        "-q",
    )
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["source"]["form"] == "pickle"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--task", "not-a-task"], ["unknown task 'not-a-task'", "text-classification"]),
        (["--precision", "int4"], ["invalid choice"]),
        (["--opset", "3"], ["opset must be in 14..23"]),
    ],
)
def test_cli_bad_options_are_exit_2(model_zoo: Zoo, tmp_path: Path, args, needles):
    result = run_cli(model_zoo.bert, "--out", tmp_path / "o", *args)
    _assert_one_line_error(result, *needles)
    assert not (tmp_path / "o").exists()


def test_cli_state_dict_key_mismatch_lists_keys(model_zoo: Zoo, tmp_path: Path):
    import torch
    from safetensors.torch import save_file

    state = model_zoo.custom_module().state_dict()
    state.pop("score.bias")
    state["extra.weight"] = torch.zeros(1)
    state["classify.weight"] = torch.zeros(5, 16)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    result = run_cli(
        path,
        "--out",
        tmp_path / "o",
        "--input-spec",
        CUSTOM_SPEC,
        "--model-class",
        f"{model_zoo.model_file}:TinyTagger",
    )
    _assert_one_line_error(
        result,
        "missing keys: score.bias",
        "unexpected keys: extra.weight",
        "classify.weight (5, 16) (model wants (4, 16))",
    )


def test_cli_internal_error_is_exit_3_with_traceback(tmp_path: Path):
    code = (
        "from convert_model import cli, pipeline\n"
        "def boom(*a, **k):\n    raise ZeroDivisionError('bug')\n"
        "pipeline.convert = boom\n"
        f"raise SystemExit(cli.main(['x.onnx', '--out', {str(tmp_path / 'o')!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "please report" in result.stderr
