"""The boundaries STYLE.md sets, checked by tools: ruff, mypy, and optimizers/ without torch."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("convert_model", "converters", "optimizers", "benchmarks", "reference_models")


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed; it comes with the 'test' extra")
    return path


def test_ruff_passes():
    result = subprocess.run(
        [_tool("ruff"), "check", *PACKAGES, "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes():
    result = subprocess.run([_tool("mypy"), *PACKAGES], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_optimizers_import_no_torch():
    banned = {"torch", "transformers", "optimum"}
    offenders = []
    for path in (ROOT / "optimizers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in banned
            ]
    assert offenders == []
