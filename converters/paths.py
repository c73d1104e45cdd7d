"""The path policy for everything read or copied from a checkpoint folder.

No file the converter reads, hashes or copies may lie outside the checkpoint's folder: not
through a symbolic link, not through a name in an index (a sharded ``*.index.json``'s
weight map), not through ``..``. A checkpoint that tries is refused with one line naming
the entry and where it points.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from convert_model.core.errors import CheckpointError
from convert_model.core.limits import load_json


def _allowed(base: Path) -> tuple[Path, ...]:
    """``base``, and for a Hugging Face cache snapshot its repository's ``blobs/`` folder.

    The hub cache stores ``snapshots/REV/config.json`` as a link to ``../../blobs/SHA``: that
    folder holds the same repository's files, so links into it stay inside the checkpoint.
    """
    if base.parent.name == "snapshots" and (base.parent.parent / "blobs").is_dir():
        return base, base.parent.parent / "blobs"
    return (base,)


def inside(root: Path, path: Path, what: str) -> Path:
    """``path`` resolved; CheckpointError when it, or a link on the way, leaves ``root``."""
    base = root.resolve()
    try:
        resolved = path.resolve(strict=False)
    except RuntimeError as e:  # how Python < 3.13 reports a loop
        raise CheckpointError(f"{path}: {what} is a symbolic link loop") from e
    except OSError as e:
        raise CheckpointError(f"{path}: {what} cannot be resolved ({e.strerror})") from e
    if not any(resolved == b or b in resolved.parents for b in _allowed(base)):
        via = " (a symbolic link)" if path.is_symlink() else ""
        raise CheckpointError(
            f"{path}: {what}{via} points outside the checkpoint folder {base}, to {resolved}"
        )
    return resolved


def check_folder(folder: Path) -> None:
    """Refuse a folder holding any symbolic link that resolves outside it (any depth)."""
    root = folder.resolve()
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            entry = Path(current) / name
            if entry.is_symlink():
                inside(root, entry, "the entry")


def index_shards(index: Path, root: Path) -> tuple[Path, ...]:
    """The shard files a sharded ``*.index.json`` names, each checked to lie inside ``root``."""
    inside(root, index, "the index")
    data = load_json(index.read_bytes(), index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(v, str) for v in weight_map.values()
    ):
        raise CheckpointError(f"{index}: 'weight_map' must be an object of tensor name -> file")
    shards = []
    for name in sorted(set(weight_map.values())):
        if os.path.isabs(name) or "\\" in name or any(p == ".." for p in name.split("/")):
            raise CheckpointError(
                f"{index}: shard {name!r} is not a file name inside the checkpoint folder"
            )
        shards.append(inside(root, index.parent / name, f"shard {name!r}"))
    return tuple(shards)


def check_named_files(folder: Path, config_names: Iterable[str]) -> None:
    """Refuse config files whose ``*_file`` entries (``vocab_file``...) name a path outside.

    Tokenizer and preprocessor configs may carry file names that the loader opens as they are;
    a relative name resolves against the folder, an absolute one would be read as it is.
    """
    for name in config_names:
        config = folder / name
        if not config.is_file():
            continue
        data = load_json(config.read_bytes(), config)
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                for key, value in node.items():
                    if str(key).endswith(("_file", "_files")) and isinstance(value, str):
                        inside(folder, folder / value, f"{name} entry {key!r} ({value!r})")
                    else:
                        stack.append(value)


def checked(root: Path, paths: Iterable[Path], what: str = "the file") -> tuple[Path, ...]:
    """Each of ``paths`` checked to lie inside ``root``; the paths as given, in order."""
    return tuple(p for p in paths if inside(root, p, what))
