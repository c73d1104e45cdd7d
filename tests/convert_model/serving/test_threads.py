"""Intra-op threads from --threads, a cgroup v2 or v1 quota, or affinity; never the host count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convert_model.serving.threads import CGROUP_ROOT_ENV, intra_op_threads

CORES = len(os.sched_getaffinity(0))


def test_intra_op_threads_follow_cgroup_v2_quota(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    choice = intra_op_threads(root=tmp_path)
    assert choice.threads == 1 and "cgroup v2" in choice.source


def test_intra_op_threads_round_a_fractional_quota_up(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert intra_op_threads(root=tmp_path).threads == 1


def test_intra_op_threads_follow_cgroup_v1_quota(tmp_path: Path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    choice = intra_op_threads(root=tmp_path)
    assert choice.threads == 1 and "cgroup v1" in choice.source


def test_intra_op_threads_use_affinity_when_unlimited(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    choice = intra_op_threads(root=tmp_path)
    assert choice.threads == CORES and choice.source == "CPU affinity"


def test_intra_op_threads_never_exceed_affinity_when_quota_is_larger(tmp_path: Path):
    (tmp_path / "cpu.max").write_text(f"{100000 * (CORES + 8)} 100000\n")
    assert intra_op_threads(root=tmp_path).threads == CORES


def test_intra_op_threads_read_the_root_from_the_environment(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    monkeypatch.setenv(CGROUP_ROOT_ENV, str(tmp_path))
    assert intra_op_threads().threads == 1


def test_intra_op_threads_take_the_flag_first(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert intra_op_threads(3, root=tmp_path).threads == 3
    with pytest.raises(ValueError, match="--threads must be >= 1, got 0"):
        intra_op_threads(0)
