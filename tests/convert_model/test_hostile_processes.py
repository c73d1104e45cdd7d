"""Notebook processes: nothing the notebook starts outlives the conversion, on any way out
(done, timed out, Ctrl-C, SIGTERM or SIGKILL of the CLI), and its temp folder goes too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from convert_model import cli
from tests.converters.test_notebook import notebook

BACKGROUND = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "open('background.pid', 'w').write(str(child.pid))\n"
)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _wait_for(path: Path, seconds: float = 60.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            time.sleep(0.3)
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private TMPDIR, so leftover notebook folders can be counted."""
    import onnxruntime  # noqa: F401  its first import writes its own TMPDIR/.ses file
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("TMPDIR", str(root))
    return root


def _run_in_process(args: list[str], capsys) -> tuple[int, str]:
    code = cli.main([*args, "-q"])
    return code, capsys.readouterr().err


def test_notebook_background_process_ends_with_the_conversion(tmp_path: Path, temp_root: Path,
                                                              capsys) -> None:
    nb = notebook(tmp_path / "nb.ipynb", BACKGROUND, "x = 1")
    code, err = _run_in_process([str(nb), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "no torch.nn.Module" in err, err
    assert _gone(int((tmp_path / "background.pid").read_text()))
    assert not list(temp_root.iterdir())


def test_notebook_child_holding_the_output_does_not_make_it_time_out(tmp_path: Path,
                                                                      temp_root: Path,
                                                                      capsys) -> None:
    nb = notebook(tmp_path / "nb.ipynb", BACKGROUND, "x = 1")
    started = time.monotonic()
    code, err = _run_in_process([str(nb), "--out", str(tmp_path / "out"),
                                 "--notebook-timeout", "60"], capsys)
    assert code == 2 and "timed out" not in err and "no torch.nn.Module" in err, err
    assert time.monotonic() - started < 60


def test_notebook_that_times_out_leaves_no_process_or_folder(tmp_path: Path, temp_root: Path,
                                                             capsys) -> None:
    nb = notebook(tmp_path / "nb.ipynb", BACKGROUND, "import time\ntime.sleep(120)")
    code, err = _run_in_process([str(nb), "--out", str(tmp_path / "out"),
                                 "--notebook-timeout", "8"], capsys)
    assert code == 2 and "timed out after 8s" in err, err
    assert _gone(int((tmp_path / "background.pid").read_text()))
    assert not list(temp_root.iterdir())


def _cli_on_sleeping_notebook(tmp_path: Path, temp_root: Path) -> tuple[subprocess.Popen, int]:
    nb = notebook(tmp_path / "nb.ipynb", BACKGROUND, "import time\ntime.sleep(120)")
    env = {**os.environ, "TMPDIR": str(temp_root)}
    process = subprocess.Popen([sys.executable, "-m", "convert_model.cli", str(nb), "--out",
                                str(tmp_path / "out")], stderr=subprocess.PIPE, text=True,
                               env=env)
    return process, _wait_for(tmp_path / "background.pid")


@pytest.mark.parametrize(("sig", "code", "last_line"), [
    (signal.SIGINT, 130, "convert-model: interrupted"),
    (signal.SIGTERM, 143, "convert-model: terminated"),
])
def test_cli_signal_ends_the_notebook_group(tmp_path: Path, temp_root: Path, sig, code,
                                            last_line) -> None:
    process, background = _cli_on_sleeping_notebook(tmp_path, temp_root)
    process.send_signal(sig)  # to the CLI alone: the notebook sits in its own session
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == last_line
    assert _gone(background)
    assert not list(temp_root.iterdir())
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_cli_sigkill_ends_the_notebook_and_its_folder(tmp_path: Path, temp_root: Path) -> None:
    process, background = _cli_on_sleeping_notebook(tmp_path, temp_root)
    process.kill()
    process.communicate(timeout=60)
    assert _gone(background, 20.0), "the notebook's background process outlived a SIGKILL"
    deadline = time.monotonic() + 20
    while list(temp_root.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(temp_root.iterdir())
