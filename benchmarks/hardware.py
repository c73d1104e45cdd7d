"""What the measuring machine offers: usable cores and the CPU's integer/vector instructions."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from pathlib import Path

# Instruction sets that decide whether int8 pays off on a CPU.
FLAGS_OF_INTEREST = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
    "asimddp",
    "i8mm",
    "sve",
)


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


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """Processor name, the instruction sets of interest it has, and the usable thread count."""
    name, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):  # no /proc/cpuinfo: report what platform knows
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                name = value.strip()
            elif key in ("flags", "Features"):
                flags.update(value.split())
    return {
        "processor": name,
        "machine": platform.machine(),
        "instructions": [f for f in FLAGS_OF_INTEREST if f in flags],
        "usable_threads": usable_threads(),
    }
