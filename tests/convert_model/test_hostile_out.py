"""Hostile --out folders: the checkpoint's own folder, folders above it, /, home, the working
folder, a folder that is not a bundle, a symbolic link; and leftovers of killed runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from convert_model.bundle import staging as bundle
from tests.convert_model.hostile import Case, assert_refused, registry
from tests.fixtures.models import Zoo

CASES, case = registry()
OLD_MANIFEST = json.dumps({"schema_version": 1, "convert_model_version": "0", "files": {}})


def _onnx_in_bundle(zoo: Zoo, tmp: Path) -> tuple[Path, Path]:
    """A previous bundle folder, holding the .onnx file about to be converted."""
    out = tmp / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text(OLD_MANIFEST)
    source = Path(shutil.copy(zoo.custom_pt2, out / "model.pt2"))
    return out, source


@case("out is the checkpoint's folder")
def _(zoo: Zoo, tmp: Path) -> Case:
    folder = Path(shutil.copytree(zoo.custom_pt2.parent, tmp / "ckpt"))
    p = folder / zoo.custom_pt2.name
    return Case(args=[str(p), "--out", str(folder), "--force"],
                needles=[str(folder), "holds the checkpoint"], checkpoint=folder)


@case("out lies above the checkpoint")
def _(zoo: Zoo, tmp: Path) -> Case:
    (tmp / "deep" / "x").mkdir(parents=True)
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "deep" / "x" / "m.pt2"))
    return Case(args=[str(p), "--out", str(tmp / "deep"), "--force"],
                needles=[str(tmp / "deep"), "lies above the folder that", "checkpoint"],
                checkpoint=p)


@case("out is a previous bundle that holds the checkpoint")
def _(zoo: Zoo, tmp: Path) -> Case:
    out, source = _onnx_in_bundle(zoo, tmp)
    return Case(args=[str(source), "--out", str(out), "--force"],
                needles=[str(out), "holds the checkpoint"], checkpoint=out)


@case("out is /")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    return Case(args=[str(p), "--out", "/", "--force"], needles=["/:", "choose another --out"],
                checkpoint=p)


@case("out is the home folder")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    return Case(args=[str(p), "--out", str(Path.home()), "--force"],
                needles=[str(Path.home()), "choose another --out"], checkpoint=p)


@case("out is the working folder")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    return Case(args=[str(p), "--out", os.getcwd(), "--force"],
                needles=["working folder", "choose another --out"], checkpoint=p)


@case("out is a folder of other data, with force")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    (tmp / "data").mkdir()
    (tmp / "data" / "results.csv").write_text("a,b\n")
    return Case(args=[str(p), "--out", str(tmp / "data"), "--force"],
                needles=[str(tmp / "data"), "not a convert-model bundle"], checkpoint=p)


@case("out is a folder with a fake manifest, with force")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    (tmp / "data").mkdir()
    (tmp / "data" / "manifest.json").write_text('{"name": "my project"}')
    return Case(args=[str(p), "--out", str(tmp / "data"), "--force"],
                needles=[str(tmp / "data"), "not a convert-model bundle"], checkpoint=p)


@case("out is a symbolic link to a bundle, with force")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    (tmp / "real").mkdir()
    (tmp / "real" / "manifest.json").write_text(OLD_MANIFEST)
    (tmp / "link").symlink_to(tmp / "real")
    return Case(args=[str(p), "--out", str(tmp / "link"), "--force"],
                needles=[str(tmp / "link"), "symbolic link", "folder itself"], checkpoint=p)


@case("out is a dangling symbolic link")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "m.pt2"))
    (tmp / "link").symlink_to(tmp / "nowhere")
    return Case(args=[str(p), "--out", str(tmp / "link")],
                needles=[str(tmp / "link"), "symbolic link"], checkpoint=p)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_out_is_refused_and_nothing_replaced(model_zoo: Zoo, tmp_path: Path, capsys,
                                                     name: str) -> None:
    assert_refused(CASES[name](model_zoo, tmp_path), tmp_path, capsys)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_staging_puts_back_an_out_lost_between_the_renames(tmp_path: Path) -> None:
    old = tmp_path / f".out.old-{_dead_pid()}"
    old.mkdir()
    (old / "manifest.json").write_text(OLD_MANIFEST)
    with bundle.staging(tmp_path / "out", force=True) as temp:
        assert (tmp_path / "out" / "manifest.json").read_text() == OLD_MANIFEST
        (temp / "manifest.json").write_text(OLD_MANIFEST.replace('"0"', '"1"'))
    assert not old.exists()
    assert '"1"' in (tmp_path / "out" / "manifest.json").read_text()


def test_staging_removes_an_old_copy_left_beside_an_out(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    old = tmp_path / f".out.old-{_dead_pid()}"
    old.mkdir()
    with bundle.staging(tmp_path / "other", force=False):
        pass
    with bundle.staging(tmp_path / "out", force=True):
        assert not old.exists()


def test_staging_cleans_up_on_sigterm_like_ctrl_c(tmp_path: Path) -> None:
    code = (
        "import os, signal, time\nfrom pathlib import Path\n"
        "from convert_model.bundle import staging as bundle\n"
        "from convert_model.core.signals import terminate_as_interrupt\n"
        "try:\n"
        "    with terminate_as_interrupt(), "
        f"bundle.staging(Path({str(tmp_path / 'out')!r}), force=False) as t:\n"
        "        (t / 'model.onnx').write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    raise SystemExit(143)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 143, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]


def test_cli_sigterm_exits_143_and_leaves_no_temp_folder(model_zoo: Zoo, tmp_path: Path) -> None:
    from tests.converters.test_notebook import notebook

    nb = notebook(tmp_path / "nb.ipynb", "import time\ntime.sleep(120)")
    cli = subprocess.Popen([sys.executable, "-m", "convert_model.cli", str(nb), "--out",
                            str(tmp_path / "out")], stderr=subprocess.PIPE, text=True)
    _wait_for_notebook(cli.pid)
    cli.send_signal(signal.SIGTERM)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 143, err
    assert err.strip().splitlines()[-1] == "convert-model: terminated"
    assert not list(tmp_path.glob(".out.*")) and not (tmp_path / "out").exists()


def _wait_for_notebook(pid: int, seconds: float = 60.0) -> int:
    """The pid of the notebook child the CLI ``pid`` started, once it runs."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    cmd = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"notebook_runner" in cmd:
                    time.sleep(0.5)
                    return int(entry.name)
        time.sleep(0.2)
    raise AssertionError("the notebook child never started")
