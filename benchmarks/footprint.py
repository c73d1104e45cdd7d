"""A graph's footprint: file size, cold start and peak resident memory, each in a fresh process.

Cold start (session creation and the first run) and peak memory only mean something in a
process that has not yet loaded the graph, so each graph is measured in a child process of
its own (``python -m benchmarks.footprint``), one after another so they do not compete for
cores. Peak memory is the child's high-water resident set (``VmHWM``, else ``ru_maxrss``);
the child also reports it from before the session is created, so the graph's own share can
be told apart from Python's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
_TIMEOUT_S = 300.0


@dataclass(frozen=True, kw_only=True)
class Footprint:
    """One graph measured in a fresh process.

    Attributes:
        size_bytes: the graph file plus its external data, if any.
        session_ms: onnxruntime session creation (load, graph optimisation, kernel setup).
        first_run_ms: the first run at batch 1, after the session exists.
        cold_start_ms: session creation plus the first run.
        baseline_rss_mb: the child's peak resident memory before the session was created
            (Python, numpy, onnxruntime).
        peak_rss_mb: the child's peak resident memory after the runs.
        peak_input: the input shapes of the largest run (the peak memory run).
    """

    size_bytes: int
    session_ms: float
    first_run_ms: float
    cold_start_ms: float
    baseline_rss_mb: float
    peak_rss_mb: float
    peak_input: Mapping[str, list[int]]

    @property
    def model_rss_mb(self) -> float:
        """Peak memory the graph added on top of the bare process."""
        return self.peak_rss_mb - self.baseline_rss_mb

    def to_json(self) -> dict[str, Any]:
        """Return the report form, rounded for reading."""
        data = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
        data["peak_input"] = {k: list(v) for k, v in self.peak_input.items()}
        # From the rounded figures, so a report read back renders the same.
        data["model_rss_mb"] = round(data["peak_rss_mb"] - data["baseline_rss_mb"], 3)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Footprint:
        """Rebuild from the report form."""
        fields = {k: v for k, v in data.items() if k != "model_rss_mb"}
        return cls(**fields)


def file_size(path: Path) -> int:
    """Bytes of ``path`` and of its external-data files (``model.onnx.data`` beside it)."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _rss_mb(status: Path = Path("/proc/self/status")) -> float:
    """This process's peak resident memory in MiB.

    Linux's ``VmHWM`` first: ``ru_maxrss`` survives ``exec``, so a child forked from a large
    parent (the pipeline, with torch loaded) would report the parent's size.
    """
    try:
        text = status.read_text()
    except OSError:  # not Linux
        text = ""
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def measure_footprint(
    path: Path,
    first: Mapping[str, np.ndarray],
    largest: Mapping[str, np.ndarray],
    threads: int,
) -> Footprint:
    """Measure ``path`` in a fresh child process.

    Args:
        path: the ONNX graph.
        first: the input of the first (cold) run, typically batch 1.
        largest: the largest input the graph will be timed on; its run sets the peak memory.
        threads: onnxruntime intra-op threads, as in the latency runs.

    Raises:
        RuntimeError: the child failed or timed out; the message carries its last error line.
    """
    with tempfile.TemporaryDirectory(prefix="convert-model-footprint-") as tmp:
        feeds = Path(tmp) / "feeds.npz"
        arrays = {f"first/{k}": v for k, v in first.items()}
        arrays.update({f"largest/{k}": v for k, v in largest.items()})
        np.savez(feeds, **arrays)  # type: ignore[arg-type]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(_ROOT), env.get("PYTHONPATH"))))
        command = [sys.executable, "-m", "benchmarks.footprint", str(path), str(feeds)]
        try:
            done = subprocess.run(
                [*command, "--threads", str(threads)],
                capture_output=True,
                text=True,
                env=env,
                timeout=_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"footprint of {path.name} timed out after {_TIMEOUT_S:.0f}s") from e
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"footprint of {path.name} failed: {lines[-1]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Footprint(size_bytes=file_size(path), **data)


def _child(path: Path, feeds_path: Path, threads: int) -> dict[str, Any]:
    """The child's work: create the session, run once cold, run the largest input, report."""
    from converters import onnx_graph

    with np.load(feeds_path, allow_pickle=False) as data:
        feeds: dict[str, dict[str, np.ndarray]] = {"first": {}, "largest": {}}
        for key in data.files:
            part, name = key.split("/", 1)
            feeds[part][name] = data[key]
    baseline = _rss_mb()
    t0 = time.perf_counter()
    sess = onnx_graph.session(path, threads)
    t1 = time.perf_counter()
    onnx_graph.run(sess, feeds["first"])
    t2 = time.perf_counter()
    onnx_graph.run(sess, feeds["largest"])
    return {
        "session_ms": (t1 - t0) * 1000.0,
        "first_run_ms": (t2 - t1) * 1000.0,
        "cold_start_ms": (t2 - t0) * 1000.0,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
        "peak_input": {k: list(v.shape) for k, v in feeds["largest"].items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point: print one JSON line with the measurements."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.footprint", description=__doc__)
    p.add_argument("graph", type=Path)
    p.add_argument("feeds", type=Path, help=".npz with first/NAME and largest/NAME arrays")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    # onnxruntime is imported before the baseline is read, so it counts as the bare process.
    import onnxruntime  # noqa: F401

    print(json.dumps(_child(args.graph, args.feeds, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
