"""The cores this process may use: CPU affinity, capped by a cgroup v2 or v1 CPU quota.

Never the host's core count: a pod limited to 2 CPUs on a 96-core host gets 2.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Cores allowed by the cgroup's CPU quota (v2 ``cpu.max`` or v1 cfs files), if any."""
    with contextlib.suppress(OSError, ValueError):  # no cgroup v2 file: try v1
        quota_text, period_text = (root / "cpu.max").read_text().split()[:2]
        if quota_text != "max":
            return max(1, math.ceil(int(quota_text) / int(period_text)))
        return None
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def usable_threads() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return min(cores, limit) if limit else cores
