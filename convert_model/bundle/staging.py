"""Write a bundle atomically: into a temporary folder beside OUT, renamed into place.

A crash (even SIGKILL) leaves at most a ``.OUT.tmp-PID-*`` folder, which the next run
removes once its process is gone. A lock beside OUT refuses a second conversion to the
same OUT while the first is running.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from convert_model.core.errors import BundleError, UsageError


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(parent: Path, name: str) -> None:
    """Remove temporary folders left by conversions whose process has died."""
    for stale in parent.glob(f".{name}.tmp-*"):
        try:
            pid = int(stale.name.split(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if not pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def staging(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty temporary folder; on normal exit it becomes ``out``.

    Raises:
        UsageError: ``out`` exists and ``force`` is false, or it is not a folder.
        BundleError: ``out``'s parent cannot be written, another conversion holds ``out``,
            or the disk fills up.
    """
    out = Path(os.path.abspath(out))
    if out.exists() and not force:
        raise UsageError(f"{out}: already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BundleError(f"{parent}: cannot create the output folder ({e.strerror})") from e
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BundleError(f"{parent}: the output folder is not writable")
    lock_path = parent / f".{out.name}.lock"
    try:
        lock = lock_path.open("a")
    except OSError as e:
        raise BundleError(f"{lock_path}: cannot create the lock file ({e.strerror})") from e
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BundleError(f"{out}: another conversion is writing this output folder") from None
        _clean_stale(parent, out.name)
        temp = parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        temp.mkdir()
        try:
            yield temp
            _replace(temp, out, force)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                raise BundleError(f"{out}: cannot write the bundle ({e.strerror})") from e
            raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    finally:
        # The lock file stays: unlinking it would let a third process lock a fresh inode
        # while a second still waits on the old one.
        lock.close()


def _replace(temp: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:  # appeared while converting
            raise UsageError(f"{out}: already exists; pass --force to replace it")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(temp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(temp, out)


def remove_stale(out: Path) -> None:
    """Remove the temporary folders that dead conversions left beside ``out``."""
    out = Path(os.path.abspath(out))
    if out.parent.is_dir():
        _clean_stale(out.parent, out.name)
