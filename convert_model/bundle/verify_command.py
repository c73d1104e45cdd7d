"""``convert-model verify OUT [--data FILE.npz] [--key KEY]``: its options and its run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convert_model.core.text import one_line, printable

DESCRIPTION = "Re-check a bundle's seal and hashes and re-run parity on its stored inputs."
EXIT_OK, EXIT_FOUND = 0, 1


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add verify's arguments to ``p`` and return it."""
    p.add_argument("out", type=Path, help="bundle folder")
    p.add_argument(
        "--data",
        type=Path,
        metavar="FILE.npz",
        help="also run the bundle on these inputs (one array per input); tabular bundles "
        "check the feature count against the input schema",
    )
    p.add_argument("--server", metavar="URL",
                   help="also send the check inputs to this running server (convert-model serve)")
    p.add_argument(
        "--key",
        type=Path,
        metavar="KEY",
        help="the key file the bundle was signed with (--sign): manifest.sig must match",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Verify; print what was checked, and every problem; return the exit code."""
    from convert_model.bundle.integrity import read_key
    from convert_model.bundle.verify import check_data, verify

    results = [verify(args.out, read_key(args.key) if args.key else None)]
    if results[0].ok and args.data is not None:
        results.append(check_data(args.out, args.data))
    problems = [line for r in results for line in r.problems]
    stream = sys.stderr if problems else sys.stdout
    print(f"{printable(args.out)}: {'verification failed' if problems else 'ok'}", file=stream)
    for r in results:
        print("\n".join(printable(line) for line in r.lines()), file=stream)
    for line in problems:
        print(f"  {one_line(line)}", file=stream)
    return EXIT_FOUND if problems else EXIT_OK
