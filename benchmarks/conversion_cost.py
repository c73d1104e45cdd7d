"""Benchmark: what one default conversion costs, in wall time and peak memory.

Runs ``convert-model CHECKPOINT`` (defaults: ``--precision auto``, the sweep included) in a
child process, under ``/usr/bin/time -v`` where it exists (its maximum resident set size),
else reading the child's ``resource.getrusage`` peak; prints one JSON line with the wall
time, the peak RSS, and each stage's seconds from the progress lines. A benchmark, not a
test: the figures depend on the machine and on whatever else runs on it.

Run: ``python -m benchmarks.conversion_cost reference:sentence-outliers [-- EXTRA ARGS]``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_TIME = Path("/usr/bin/time")
_MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_STAGE = re.compile(r"^\[(\d+)/(\d+)\] (.+?) …$")
_DONE = re.compile(r"^\s+done in ([\d.]+)s$")


def stage_seconds(log: str) -> dict[str, float]:
    """Each stage's seconds, from the progress lines ("[2/6] export …" then "done in 3.1s")."""
    stages: dict[str, float] = {}
    current = None
    for line in log.splitlines():
        if match := _STAGE.match(line):
            current = match[3]
        elif (match := _DONE.match(line)) and current is not None:
            stages[current] = float(match[1])
            current = None
    return stages


def measure(checkpoint: str, extra: list[str]) -> dict[str, object]:
    """Convert ``checkpoint`` in a child process; wall seconds, peak RSS and stage seconds."""
    with tempfile.TemporaryDirectory(prefix="convert-model-cost-") as tmp:
        command = [sys.executable, "-m", "convert_model.cli", checkpoint,
                   "--out", str(Path(tmp) / "bundle"), *extra]
        timed = [str(_TIME), "-v", *command] if _TIME.exists() else command
        started = time.perf_counter()
        done = subprocess.run(timed, capture_output=True, text=True, env=os.environ.copy(),
                              check=False)
        wall = time.perf_counter() - started
    match = _MAX_RSS.search(done.stderr)
    peak_kb = int(match[1]) if match else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"checkpoint": checkpoint, "exit_code": done.returncode, "wall_s": round(wall, 1),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "peak_rss_from": "/usr/bin/time -v" if match else "getrusage(RUSAGE_CHILDREN)",
            "stages_s": stage_seconds(done.stderr + done.stdout),
            "tail": (done.stderr.strip().splitlines() or [""])[-1][:200]}


def main(argv: list[str] | None = None) -> int:
    """Command line: one conversion, one JSON line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    extra = args[args.index("--") + 1 :] if "--" in args else []
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(measure(args[0], extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
