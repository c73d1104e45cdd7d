"""Write a bundle atomically: into a temporary folder beside OUT, renamed into place.

A crash (even SIGKILL) leaves at most a ``.OUT.tmp-PID-*`` folder, which the next run
removes once its process is gone, or a ``.OUT.old-PID`` (killed between the two renames of
a ``--force`` replace), which the next run puts back as OUT when OUT is missing. A lock
beside OUT refuses a second conversion to the same OUT while the first is running.

OUT policy: OUT may not be a symbolic link; a folder that holds the checkpoint (or any path
to keep), the working folder, the home folder or ``/`` (or lies above one of them) is never
replaced; with ``--force`` only a previous bundle (a folder with our manifest.json) or an
empty folder is replaced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
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


def _dead_leftovers(parent: Path, name: str, kind: str) -> Iterator[Path]:
    """``.NAME.KIND-PID*`` folders whose process is gone."""
    for stale in sorted(parent.glob(f".{name}.{kind}-*")):
        try:
            pid = int(stale.name.split(f".{kind}-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if not pid_alive(pid):
            yield stale


def _clean_stale(parent: Path, name: str) -> None:
    """Remove leftovers of conversions whose process died; put back an OUT lost mid-replace."""
    for stale in _dead_leftovers(parent, name, "tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in _dead_leftovers(parent, name, "old"):
        if not (parent / name).exists() and not (parent / name).is_symlink():
            with contextlib.suppress(OSError):  # left for the user if it cannot move back
                os.rename(old, parent / name)  # killed between the renames: the old returns
        else:
            shutil.rmtree(old, ignore_errors=True)


def _protected(keep: Iterable[Path]) -> list[tuple[Path, str]]:
    roots = [(Path(os.path.abspath(k)).resolve(), f"holds the checkpoint {k}") for k in keep]
    roots.append((Path.cwd().resolve(), "is the working folder"))
    with contextlib.suppress(KeyError, RuntimeError):  # no home folder in this environment
        roots.append((Path.home().resolve(), "is the home folder"))
    roots.append((Path("/"), "is /"))
    return roots


def check_out(out: Path, force: bool, keep: Iterable[Path] = ()) -> None:
    """Refuse an OUT that is a link, protected, or (with force) not a previous bundle."""
    if out.is_symlink():
        raise UsageError(
            f"{out}: a symbolic link (to {os.readlink(out)}); pass the folder itself as --out"
        )
    if not out.exists():
        return
    resolved = out.resolve()
    for root, why in _protected(keep):
        if resolved == root or resolved in root.parents:
            what = "is" if resolved == root else "lies above the folder that"
            raise UsageError(
                f"{out}: {what} {why.removeprefix('is ')}; a bundle never replaces it, "
                "choose another --out"
            )
    if not force:
        raise UsageError(f"{out}: already exists; pass --force to replace it")
    if not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if any(out.iterdir()) and not _is_bundle(out):
        raise UsageError(
            f"{out}: not a convert-model bundle (no manifest.json of ours); --force replaces "
            "only a previous bundle, so remove it yourself or choose another --out"
        )


def _is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds a manifest.json written by convert-model."""
    manifest = folder / "manifest.json"
    if not manifest.is_file() or manifest.is_symlink():
        return False
    try:
        data = json.loads(manifest.read_bytes())
    except (ValueError, OSError, RecursionError):
        return False
    return isinstance(data, dict) and {"schema_version", "convert_model_version", "files"} <= set(
        data
    )


@contextlib.contextmanager
def staging(out: Path, force: bool, keep: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield an empty temporary folder; on normal exit it becomes ``out``.

    ``keep``: paths (the checkpoint) that ``out`` must not hold.

    Raises:
        UsageError: ``out`` breaks the OUT policy (see the module), or exists without force.
        BundleError: ``out``'s parent cannot be written, another conversion holds ``out``,
            or the disk fills up.
    """
    keep = tuple(keep)
    out = Path(os.path.abspath(out))
    check_out(out, force, keep)
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
        check_out(out, force, keep)  # again, under the lock: a lost OUT may have come back
        temp = parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        temp.mkdir()
        try:
            yield temp
            _replace(temp, out, force, keep)
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


def _replace(temp: Path, out: Path, force: bool, keep: tuple[Path, ...] = ()) -> None:
    if out.exists() or out.is_symlink():
        check_out(out, force, keep)  # appeared or changed while converting
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
