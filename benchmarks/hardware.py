"""What the measuring machine offers: usable cores and the CPU's integer/vector instructions."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

from convert_model.core.threads import usable_threads

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
