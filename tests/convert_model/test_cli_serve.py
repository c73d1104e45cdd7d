"""``convert-model serve`` refuses bad input with one line and exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from convert_model.cli import main


def test_cli_serve_refuses_a_bundle_without_serving(text_bundle: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]):
    old = tmp_path / "old"
    shutil.copytree(text_bundle, old)
    shutil.rmtree(old / "serving")
    assert main(["serve", str(old)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no serving/ predictor" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("flags", "needle"), [
    (["--max-batch", "0"], "--max-batch must be >= 1"),
    (["--max-queue", "0"], "--max-queue must be >= 1"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--port", "nope"], "invalid int value"),
])
def test_cli_serve_refuses_bad_settings(text_bundle: Path, capsys: pytest.CaptureFixture[str],
                                        flags: list[str], needle: str):
    assert main(["serve", str(text_bundle), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_cli_serve_refuses_a_folder_that_is_no_bundle(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]):
    assert main(["serve", str(tmp_path)]) == 2
    assert "no serving/ predictor" in capsys.readouterr().err
