"""SHA-256 of files and of sets of files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(paths: Iterable[Path], root: Path) -> tuple[str, dict[str, str]]:
    """One digest over several files (by relative path and content), and each file's digest.

    Paths are relative to ``root``; a file outside it (a --model-class file) is ``../...``.
    """
    each = {
        os.path.relpath(p, root) if p != root else p.name: sha256_file(p) for p in sorted(paths)
    }
    digest = hashlib.sha256()
    for rel, sha in sorted(each.items()):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest(), each
