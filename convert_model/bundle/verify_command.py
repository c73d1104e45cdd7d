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
    p.add_argument(
        "--key",
        type=Path,
        metavar="KEY",
        help="the key file the bundle was signed with (--sign): manifest.sig must match",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Verify; print ``OUT: ok (...)`` or every problem on stderr; return the exit code."""
    from convert_model.bundle.integrity import read_key
    from convert_model.bundle.verify import check_data, verify

    result = verify(args.out, read_key(args.key) if args.key else None)
    if result.ok and args.data is not None:
        result = check_data(args.out, args.data)
    if result.ok and result.manifest is not None:
        print(
            f"{printable(args.out)}: ok ({len(result.manifest.files)} files, "
            f"{len(result.manifest.variants)} variant(s) within budget)"
        )
        return EXIT_OK
    print(f"{printable(args.out)}: verification failed", file=sys.stderr)
    for line in result.problems:
        print(f"  {one_line(line)}", file=sys.stderr)
    return EXIT_FOUND
