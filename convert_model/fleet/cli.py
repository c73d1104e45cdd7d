"""``convert-model fleet``: convert a fleet of models on Ray, or re-verify a root of bundles.

::

    convert-model fleet FLEET.yaml [--address ADDR] [--max-parallel N] [--force] [-q]
    convert-model fleet --verify ROOT [--retime]

Exit codes: 0 every model passed; 1 a model failed (a gate, a conversion, a verification);
2 a bad fleet file or usage (one line naming the file, the entry and the field).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fleet`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "fleet",
        prog="convert-model fleet",
        description="Convert every model in FLEET.yaml as Ray tasks (a local Ray instance by "
        "default) and write fleet.json/.md/.html under its root; or, with --verify ROOT, "
        "re-verify every bundle under ROOT with the installed toolchain.",
    )
    p.add_argument("fleet_file", nargs="?", type=Path, metavar="FLEET.yaml",
                   help="the fleet file: root, defaults and models with their options")
    p.add_argument("--verify", type=Path, metavar="ROOT",
                   help="re-verify every bundle under ROOT instead of converting")
    p.add_argument("--retime", action="store_true",
                   help="with --verify: time the kept graphs again")
    p.add_argument("--address", help="a running Ray cluster (default: start a local one)")
    p.add_argument("--max-parallel", type=int, metavar="N",
                   help="at most N conversions at once (default: as many as fit)")
    p.add_argument("--force", action="store_true",
                   help="convert again even bundles that are up to date")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``fleet`` command; return its exit code."""
    from convert_model.core.errors import UsageError
    from convert_model.fleet.report import markdown

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    if (args.fleet_file is None) == (args.verify is None):
        raise UsageError("convert-model fleet needs FLEET.yaml or --verify ROOT (one of them)")
    if args.verify is not None:
        from convert_model.fleet.verify import verify_root

        if args.address or args.max_parallel or args.force:
            raise UsageError("--verify takes only ROOT and --retime")
        report = verify_root(args.verify, retime_latency=args.retime, log=log)
    else:
        from convert_model.fleet.runner import run_fleet
        from convert_model.fleet.spec import load_fleet

        if args.retime:
            raise UsageError("--retime goes with --verify ROOT")
        spec = load_fleet(args.fleet_file)
        log(f"fleet {args.fleet_file}: {len(spec.models)} models -> {spec.root}")
        report = run_fleet(spec, address=args.address, max_parallel=args.max_parallel,
                           force=args.force, log=log)
    print(markdown(report), end="")
    return EXIT_OK if report.ok else EXIT_FAILED


def main(argv: Sequence[str]) -> int:
    """``convert-model fleet ARGS``: parse with the command line's one-line usage errors."""
    from convert_model.cli_parser import LineParser

    parser = LineParser(prog="convert-model")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fleet", *argv])
    return int(args.run(args))
