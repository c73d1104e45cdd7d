from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convert_model.bundle import staging as bundle
from convert_model.core.errors import BundleError, UsageError


def test_staging_renames_into_place_on_success(tmp_path: Path):
    out = tmp_path / "out"
    with bundle.staging(out, force=False) as temp:
        (temp / "a.txt").write_text("x")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")] == []


def test_staging_leaves_nothing_when_the_body_raises(tmp_path: Path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), bundle.staging(out, force=False) as temp:
        (temp / "half.onnx").write_text("partial")
        raise RuntimeError("crash mid-way")
    assert not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


OLD_MANIFEST = '{"schema_version": 1, "convert_model_version": "old", "files": {}}'


def test_staging_keeps_the_old_bundle_when_a_forced_rewrite_fails(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(OLD_MANIFEST)
    with pytest.raises(RuntimeError), bundle.staging(out, force=True):
        raise RuntimeError("crash")
    assert (out / "manifest.json").read_text() == OLD_MANIFEST


def test_staging_refuses_existing_out_without_force(tmp_path: Path):
    (tmp_path / "out").mkdir()
    with (
        pytest.raises(UsageError, match="already exists; pass --force"),
        bundle.staging(tmp_path / "out", force=False),
    ):
        pass


def test_staging_refuses_a_second_writer(tmp_path: Path):
    out = tmp_path / "out"
    with bundle.staging(out, force=False):
        with (
            pytest.raises(BundleError, match="another conversion is writing"),
            bundle.staging(out, force=False),
        ):
            pass


def test_staging_cleans_up_after_a_killed_process(tmp_path: Path):
    code = (
        "import os, sys, signal\nfrom pathlib import Path\n"
        "from convert_model.bundle import staging as bundle\n"
        f"with bundle.staging(Path({str(tmp_path / 'out')!r}), force=False) as t:\n"
        "    (t / 'model.onnx').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode == -9
    assert not (tmp_path / "out").exists()
    leftovers = list(tmp_path.glob(".out.tmp-*"))
    assert len(leftovers) == 1
    with bundle.staging(tmp_path / "out", force=False):
        assert not leftovers[0].exists(), "the next run removes a dead process's temp folder"


def test_staging_reports_a_full_disk_as_a_bundle_error(tmp_path: Path):
    out = tmp_path / "out"
    with pytest.raises(BundleError, match="No space left"), bundle.staging(out, force=False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert not out.exists()


def test_staging_unwritable_parent_is_a_bundle_error(tmp_path: Path):
    if os.geteuid() == 0:
        parent = Path("/proc/convert-model-test")  # not even root can write here
    else:
        parent = tmp_path / "ro"
        parent.mkdir(mode=0o500)
    with pytest.raises(BundleError), bundle.staging(parent / "out", force=False):
        pass
