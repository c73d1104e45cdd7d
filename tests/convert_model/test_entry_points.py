"""The Python API and the command line time under the same conditions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.models import Zoo


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return {**env, "HF_HUB_OFFLINE": "1"}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_clean_env(), timeout=600)


def test_api_and_cli_record_the_same_omp_wait_policy(model_zoo: Zoo, tmp_path: Path):
    api_out, cli_out = tmp_path / "api", tmp_path / "cli"
    code = ("from convert_model import convert\n"
            f"convert({str(model_zoo.custom_pt2)!r}, out={str(api_out)!r}, sweep=None)\n")
    api = _python(code)
    assert api.returncode == 0, api.stderr
    env_cli = subprocess.run(
        [sys.executable, "-m", "convert_model.cli", str(model_zoo.custom_pt2), "--out",
         str(cli_out), "--sweep", "off", "-q"],
        capture_output=True, text=True, env=_clean_env(), timeout=600)
    assert env_cli.returncode == 0, env_cli.stderr
    policies = [json.loads((out / "manifest.json").read_text())["measurement"]["omp_wait_policy"]
                for out in (api_out, cli_out)]
    assert policies == ["PASSIVE", "PASSIVE"]


def test_omp_wait_policy_set_after_torch_loaded_says_it_is_not_in_effect():
    code = ("import torch\nimport convert_model\n"
            "from convert_model.core.omp import effective_wait_policy\n"
            "print(effective_wait_policy())")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "PASSIVE (not in effect: torch was imported before " \
        "convert_model)"


def test_omp_wait_policy_the_user_set_is_kept():
    env = {**_clean_env(), "OMP_WAIT_POLICY": "ACTIVE"}
    code = ("import convert_model, os\nfrom convert_model.core.omp import effective_wait_policy\n"
            "print(os.environ['OMP_WAIT_POLICY'], effective_wait_policy())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.stdout.split() == ["ACTIVE", "ACTIVE"], result.stderr
