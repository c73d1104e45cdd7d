"""onnxruntime's intra-op thread count: ``--threads``, else the cgroup CPU quota, else affinity.

Never the host's core count: a pod limited to 2 CPUs on a 96-core host gets 2 threads
(onnxruntime ignores ``OMP_NUM_THREADS``, and KServe's own count reads only cgroup v1).
``SERVING_CGROUP_ROOT`` points at another cgroup folder (tests use a fake one).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT_ENV = "SERVING_CGROUP_ROOT"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True, kw_only=True)
class ThreadChoice:
    """How many intra-op threads, and where the number came from (logged at start)."""

    threads: int
    source: str


def _read_quota(root: Path) -> tuple[int, str] | None:
    """Cores allowed by cgroup v2 ``cpu.max`` or v1 ``cpu/cpu.cfs_quota_us``, if limited."""
    try:
        quota_text, period_text = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        quota_text = period_text = ""
    if quota_text:
        if quota_text == "max":
            return None
        try:
            cores = math.ceil(int(quota_text) / int(period_text))
        except (ValueError, ZeroDivisionError):
            return None
        return max(1, cores), f"cgroup v2 {root / 'cpu.max'}"
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            quota = int((root / folder / "cpu.cfs_quota_us").read_text())
            period = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period)), f"cgroup v1 {root / folder}"
        return None
    return None


def intra_op_threads(requested: int | None = None, root: Path | None = None) -> ThreadChoice:
    """The thread count to give onnxruntime, and its source.

    Args:
        requested: ``--threads``; wins when given.
        root: the cgroup folder (default: ``$SERVING_CGROUP_ROOT`` or ``/sys/fs/cgroup``).

    Raises:
        ValueError: when ``requested`` is below 1.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be >= 1, got {requested}")
        return ThreadChoice(threads=requested, source="--threads")
    root = root or Path(os.environ.get(CGROUP_ROOT_ENV) or DEFAULT_CGROUP_ROOT)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no affinity mask to read
        cores = os.cpu_count() or 1
    quota = _read_quota(root)
    if quota is not None and quota[0] <= cores:
        return ThreadChoice(threads=quota[0], source=f"{quota[1]} CPU quota")
    return ThreadChoice(threads=cores, source="CPU affinity")
