"""Fleet against one-after-another: wall time, and each model's speed-up in both runs.

    python benchmarks/fleet_vs_solo.py FLEET.yaml OUT [--only a,b] [--set sweep=off] [--repeat N]

Converts the models with the same options one after another, each in its own process
(``convert_model.convert``, with its fleet thread count and ``OMP_NUM_THREADS`` as a Ray
task gets it), into ``OUT/solo/NAME``, and as a fleet (``convert-model fleet``, a local
Ray instance) into ``OUT/fleet``; ``--repeat`` alternates the order. Prints a Markdown
table of the recommended variant's speed-up over the original in every run, and the wall
times.
Measures only: nothing here decides.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

SOLO = """
import sys
from pathlib import Path
from convert_model import convert
from convert_model.fleet.spec import load_fleet
from convert_model.progress import Progress

entry = next(m for m in load_fleet(Path(sys.argv[1])).models if m.name == sys.argv[2])
result = convert(entry.checkpoint, out=Path(sys.argv[3]), force=True,
                 progress=Progress(total=6, enabled=False), **entry.options)
"""


def _fleet_file(source: Path, out: Path, only: list[str], overrides: dict[str, str]) -> Path:
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    models = [m for m in data["models"]
              if not only or (m.get("name") or m["checkpoint"].split(":")[-1]) in only]
    for m in models:  # relative checkpoints stay where the source file put them
        if not m["checkpoint"].startswith("reference:"):
            m["checkpoint"] = str((source.parent / m["checkpoint"]).resolve())
    data.update(root=str(out / "fleet"), models=models)
    data["defaults"] = {**(data.get("defaults") or {}), **overrides}
    path = out / "fleet.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run_fleet(fleet: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convert_model.cli", "fleet", str(fleet), "--force",
                    "-q"], check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _run_solo(fleet: Path, threads: dict[str, int], out: Path) -> float:
    start = time.perf_counter()
    for name, count in threads.items():
        # OMP_NUM_THREADS as Ray sets it for a task reserving `count` CPUs: the tree libraries'
        # own predict (the original) sizes its OpenMP pool from it, not from --threads.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(count)}
        subprocess.run([sys.executable, "-c", SOLO, str(fleet), name, str(out / "solo" / name)],
                       check=False, env=env)
    return time.perf_counter() - start


def _speedup(bundle: Path) -> tuple[str | None, float | None]:
    try:
        manifest = json.loads((bundle / "manifest.json").read_text())
    except OSError:
        return None, None
    name = manifest["recommended"]
    variant = next((v for v in manifest["variants"] if v["name"] == name), None)
    return name, variant["speedup"] if variant else None


def main() -> None:
    """Run both, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fleet", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--only", default="", help="comma-separated model names")
    p.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                   help="an option for every model, e.g. sweep=off")
    p.add_argument("--repeat", type=int, default=1, help="pairs of runs, order alternating")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = dict(item.split("=", 1) for item in args.set)
    fleet = _fleet_file(args.fleet, args.out, [n for n in args.only.split(",") if n], overrides)
    from convert_model.fleet.spec import load_fleet

    threads = {m.name: m.threads for m in load_fleet(fleet).models}
    walls: dict[str, list[float]] = {"solo": [], "fleet": []}
    speedups: dict[tuple[str, str], list[str]] = {}
    for index in range(args.repeat):
        for which in (("solo", "fleet") if index % 2 == 0 else ("fleet", "solo")):
            run = _run_solo(fleet, threads, args.out) if which == "solo" else _run_fleet(fleet)
            walls[which].append(run)
            for name in threads:
                variant, speedup = _speedup(args.out / which / name)
                speedups.setdefault((name, which), []).append(f"{variant} {speedup}x")
    print("| model | fleet: recommended, speed-up per run | solo: same |\n|---|---|---|")
    for name in threads:
        print(f"| {name} | {'; '.join(speedups[name, 'fleet'])} | "
              f"{'; '.join(speedups[name, 'solo'])} |")
    print(f"\nwall per run: fleet {', '.join(f'{w:.1f}s' for w in walls['fleet'])}; one after "
          f"another {', '.join(f'{w:.1f}s' for w in walls['solo'])} ({len(threads)} models)")


if __name__ == "__main__":
    main()
