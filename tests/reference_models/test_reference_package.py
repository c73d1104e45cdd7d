"""Properties of the reference_models package itself: light to import, no binaries committed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import reference_models

PACKAGE = Path(reference_models.__file__).resolve().parent


def test_reference_models_package_holds_no_file_over_1_mb() -> None:
    big = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.stat().st_size > 1_000_000
    ]
    assert big == []


def test_import_reference_models_lists_models_without_importing_torch_or_tree_libraries() -> None:
    code = (
        "import sys, reference_models; reference_models.names(); "
        "print(sorted(m for m in ('torch', 'transformers', 'tokenizers', 'xgboost', 'lightgbm') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
