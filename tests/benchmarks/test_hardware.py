"""The thread count: the cores this process may use, from its affinity and a cgroup quota."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.hardware import cpu_info
from convert_model.core.threads import _cgroup_cpu_limit, usable_threads

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from convert_model.core.threads import usable_threads
print(usable_threads())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_usable_threads_is_one_under_a_one_cpu_affinity():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "1"


def test_usable_threads_never_exceeds_the_affinity():
    assert 1 <= usable_threads() <= len(os.sched_getaffinity(0))
    assert cpu_info()["usable_threads"] == usable_threads()


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("150000 100000\n", 2), ("50000 100000\n", 1), ("400000 100000\n", 4), ("max 100000\n", None)],
)
def test_cgroup_cpu_limit_reads_cpu_max(tmp_path: Path, cpu_max: str, expected: int | None):
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert _cgroup_cpu_limit(tmp_path) == expected


@pytest.mark.parametrize(("quota", "expected"), [("250000", 3), ("-1", None)])
def test_cgroup_cpu_limit_reads_v1_cfs_files(tmp_path: Path, quota: str, expected: int | None):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota)
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert _cgroup_cpu_limit(tmp_path) == expected


def test_cgroup_cpu_limit_is_none_without_cgroup_files(tmp_path: Path):
    assert _cgroup_cpu_limit(tmp_path) is None


def test_usable_threads_takes_the_cgroup_quota_under_the_affinity(monkeypatch, tmp_path: Path):
    from convert_model.core import threads as hardware

    (tmp_path / "cpu.max").write_text("100000 100000\n")
    monkeypatch.setattr(hardware, "_cgroup_cpu_limit", lambda: _cgroup_cpu_limit(tmp_path))
    assert hardware.usable_threads() == 1
