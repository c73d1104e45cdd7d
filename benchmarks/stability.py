"""Does the choice flip? Convert one checkpoint several times back to back and compare.

Each run is a fresh ``convert-model`` process into its own folder, as a user would run it
twice; the recommendation, every variant's speed-up with its paired interval, and the
reason printed for the recommended one are collected. Measuring only: ``stable`` says
whether every run recommended the same variant; the caller turns that into an exit code.

Run: ``python -m benchmarks.stability reference:revertrisk-multilingual --runs 5``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Run:
    """One conversion: exit code, the recommendation and its reason, each variant's figures."""

    exit_code: int
    recommended: str | None
    reason: str
    variants: tuple[dict[str, Any], ...]


@dataclass(frozen=True, kw_only=True)
class Stability:
    """Every run, and whether they all recommended the same variant."""

    checkpoint: str
    runs: tuple[Run, ...]

    @property
    def stable(self) -> bool:
        """Whether every run converted and recommended the same variant."""
        picks = {r.recommended for r in self.runs}
        return len(picks) == 1 and None not in picks and all(r.exit_code in (0, 1)
                                                              for r in self.runs)

    def markdown(self) -> str:
        """One row per run: exit code, recommendation, its speed-up interval and reason."""
        lines = [f"## {self.checkpoint}: {len(self.runs)} runs, "
                 f"{'the same choice every time' if self.stable else 'the choice FLIPS'}", "",
                 "| run | exit | recommended | speed-up [interval] | reason |",
                 "|---|---|---|---|---|"]
        for i, r in enumerate(self.runs, start=1):
            chosen = next((v for v in r.variants if v["name"] == r.recommended), {})
            ratio = ((chosen.get("latency") or {}).get("ratio_to_reference")) or {}
            speed = (f"{1 / ratio['ratio']:.2f}× [{1 / ratio['high']:.2f}, {1 / ratio['low']:.2f}]"
                     if ratio else "–")
            lines.append(f"| {i} | {r.exit_code} | {r.recommended} | {speed} | {r.reason} |")
        return "\n".join(lines) + "\n"


def convert_once(checkpoint: str, out: Path, extra: Sequence[str]) -> Run:
    """One ``convert-model`` process; the manifest it wrote."""
    done = subprocess.run(
        [sys.executable, "-m", "convert_model.cli", checkpoint, "--out", str(out), "-q", *extra],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False,
    )
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        return Run(exit_code=done.returncode, recommended=None,
                   reason=(done.stderr.strip().splitlines() or ["no bundle"])[-1], variants=())
    manifest = json.loads(manifest_path.read_text())
    variants = tuple(manifest["variants"])
    chosen: dict[str, Any] = next(
        (v for v in variants if v["name"] == manifest["recommended"]), {}
    )
    return Run(exit_code=done.returncode, recommended=manifest["recommended"],
               reason=chosen.get("reason", ""), variants=variants)


def measure(checkpoint: str, runs: int = 5, extra: Sequence[str] = ()) -> Stability:
    """Convert ``checkpoint`` ``runs`` times back to back."""
    with tempfile.TemporaryDirectory(prefix="convert-model-stability-") as tmp:
        return Stability(checkpoint=checkpoint, runs=tuple(
            convert_once(checkpoint, Path(tmp) / f"run-{i}", extra) for i in range(runs)))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the runs as Markdown; exit 1 when the recommendation flipped."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.stability",
                                description="Convert a checkpoint N times; does the choice flip?")
    p.add_argument("checkpoint", nargs="+", help="checkpoints or reference:NAME")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--convert-args", default="--sweep off",
                   help="extra convert-model arguments (default: '--sweep off')")
    args = p.parse_args(argv)
    stable = True
    for checkpoint in args.checkpoint:
        result = measure(checkpoint, args.runs, args.convert_args.split())
        print(result.markdown(), flush=True)
        stable &= result.stable
    return 0 if stable else 1


if __name__ == "__main__":
    sys.exit(main())
