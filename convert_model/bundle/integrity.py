"""What makes a bundle tamper-evident: a manifest digest, a signature, paths kept inside.

- ``manifest.sha256`` beside ``manifest.json`` holds the SHA-256 of its bytes, so an edit of
  the manifest (a budget, a status, a source path) no longer passes ``verify``. It guards
  against accidents and careless edits; whoever can rewrite the bundle can rewrite it too.
- ``manifest.sig`` (``convert-model --sign KEY``) holds HMAC-SHA256 of the manifest's bytes
  under a key file the user keeps outside the bundle; ``verify --key KEY`` checks it, so
  only a holder of the key can produce a bundle that verifies.
- Every path the manifest names is relative, without ``..``, not a link, and inside the
  bundle; every file in the bundle (caches included) is listed in the manifest.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from convert_model.core.errors import UsageError

MANIFEST_NAME = "manifest.json"
DIGEST_NAME = "manifest.sha256"
SIGNATURE_NAME = "manifest.sig"
SEALS = frozenset({MANIFEST_NAME, DIGEST_NAME, SIGNATURE_NAME})
MIN_KEY_BYTES = 16


def read_key(path: Path) -> bytes:
    """The signing key's bytes; UsageError when the file is missing, not a file or too short."""
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            raise UsageError(f"{path}: the key is not a regular file")
        key = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the key ({e.strerror})") from e
    if len(key.strip()) < MIN_KEY_BYTES:
        raise UsageError(f"{path}: the key must hold at least {MIN_KEY_BYTES} bytes")
    return key


def _sign(data: bytes, key: bytes) -> bytes:
    """The signature file's exact bytes: the HMAC in hex and a newline."""
    return hmac.new(key, data, hashlib.sha256).hexdigest().encode() + b"\n"


def _digest_line(data: bytes) -> bytes:
    """The digest file's exact bytes, as ``sha256sum`` writes them."""
    return f"{hashlib.sha256(data).hexdigest()}  {MANIFEST_NAME}\n".encode()


def seal(folder: Path, key: bytes | None = None) -> None:
    """Write ``manifest.sha256`` (and, with ``key``, ``manifest.sig``) for folder's manifest."""
    data = (folder / MANIFEST_NAME).read_bytes()
    (folder / DIGEST_NAME).write_bytes(_digest_line(data))
    if key is not None:
        (folder / SIGNATURE_NAME).write_bytes(_sign(data, key))


def check_seal(folder: Path, key: bytes | None = None) -> list[str]:
    """Problems with the manifest's digest and, when ``key`` is given, its signature."""
    data = (folder / MANIFEST_NAME).read_bytes()
    problems = []
    digest = folder / DIGEST_NAME
    if not digest.is_file() or digest.is_symlink():
        problems.append(f"{DIGEST_NAME}: missing; the manifest cannot be checked")
    elif digest.read_bytes() != _digest_line(data):
        problems.append(
            f"{MANIFEST_NAME}: sha256 differs from {DIGEST_NAME} (manifest or digest changed)"
        )
    if key is not None:
        signature = folder / SIGNATURE_NAME
        if not signature.is_file() or signature.is_symlink():
            problems.append(f"{SIGNATURE_NAME}: missing; the bundle is not signed")
        elif not hmac.compare_digest(signature.read_bytes(), _sign(data, key)):
            problems.append(
                f"{SIGNATURE_NAME}: the signature does not match (manifest changed, or "
                "another key)"
            )
    return problems


def path_problem(folder: Path, rel: object) -> str | None:
    """Why ``rel`` is not a plain relative path to a file inside ``folder``, or None."""
    if not isinstance(rel, str) or not rel:
        return f"{rel!r}: not a relative path"
    pure = PurePosixPath(rel)
    if pure.is_absolute() or "\\" in rel or ".." in pure.parts or rel != pure.as_posix():
        return f"{rel}: not a plain relative path inside the bundle"
    current = folder
    for part in pure.parts:
        current = current / part
        if current.is_symlink():
            return f"{rel}: a symbolic link (bundles hold no links)"
    resolved = (folder / rel).resolve()
    if folder.resolve() not in resolved.parents:
        return f"{rel}: leaves the bundle"
    return None


def unlisted(folder: Path, listed: Iterable[str]) -> list[str]:
    """Every entry in ``folder`` that the manifest does not list: files, caches, links."""
    names = set(listed) | SEALS
    problems = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted((*dirs, *files)):
            path = Path(current) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                problems.append(f"{rel}: a symbolic link, not listed in the manifest")
            elif path.is_dir():
                continue
            elif rel not in names:
                problems.append(f"{rel}: not listed in the manifest")
    return problems
