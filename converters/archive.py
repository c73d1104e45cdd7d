"""Check a ``torch.export`` archive (``.pt2``) before torch reads it, and read it weights-only.

``torch.export.load`` unpickles the archive's sample inputs, any weight or constant marked
``use_pickle``, and custom objects, with ``weights_only=False``: a crafted member runs code.
So, before it is called:

- the zip's member list is checked: names relative and inside, at most ``MAX_MEMBERS``
  members, declared sizes within ``MAX_TOTAL_BYTES`` and no compression bomb;
- every member that torch would unpickle must load with ``torch.load(weights_only=True)``
  (raw tensor payloads, JSON and the format's text markers are read without unpickling);
  one that does not is refused, naming it, unless ``--trust-pickle``;
- shared libraries (AOTInductor packages) are refused: loading one runs its native code.

Then the load itself runs with ``torch.load`` forced to ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 2**36  # 64 GiB declared, uncompressed
MAX_RATIO = 200  # a member over 16 MiB may be at most this many times its compressed size
_RATIO_FLOOR = 16 * 2**20
_TEXT_MEMBERS = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version",
     ".data/serialization_id", "version"}
)
_NATIVE_SUFFIXES = (".so", ".dll", ".dylib", ".pyd")
_TRUST = "re-run with --trust-pickle only if you trust its author"


def members(path: Path, corrupt: str = "corrupt zip archive") -> list[zipfile.ZipInfo]:
    """The archive's members, checked for names that leave it and for declared sizes.

    ``corrupt`` starts the message when the file is not a readable zip.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: {corrupt} ({e})") from e
    if len(infos) > MAX_MEMBERS:
        raise CheckpointError(f"{path}: {len(infos):,} zip members; at most {MAX_MEMBERS:,}")
    total = 0
    for info in infos:
        name = info.filename
        normal = posixpath.normpath(name)
        if (name.startswith("/") or "\\" in name or normal.startswith("..")
                or ":" in name.split("/")[0]):
            raise CheckpointError(f"{path}: zip member {name!r} leaves the archive")
        total += info.file_size
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise CheckpointError(
                f"{path}: zip member {name!r} expands {info.compress_size:,} bytes to "
                f"{info.file_size:,} (a compression bomb?)"
            )
    if total > MAX_TOTAL_BYTES:
        raise CheckpointError(
            f"{path}: zip members declare {total:,} bytes; at most {MAX_TOTAL_BYTES:,}"
        )
    return infos


def _inner(name: str) -> str:
    """A member's name below the archive's top folder (torch.save and .pt2 add one)."""
    return name.split("/", 1)[1] if "/" in name else name


def _payloads(archive: zipfile.ZipFile, names: dict[str, str]) -> tuple[set[str], set[str]]:
    """Members the payload configs describe as raw tensor bytes, and as pickled."""
    from torch.export.pt2_archive.constants import TENSOR_CONSTANT_FILENAME_PREFIX

    raw, pickled = set(), set()
    for inner, full in names.items():
        folder, _, file = inner.rpartition("/")
        if folder not in ("data/weights", "data/constants") or not file.endswith("_config.json"):
            continue
        try:
            config = json.loads(archive.read(full)).get("config", {})
        except (ValueError, AttributeError) as e:
            raise CheckpointError(f"member {full!r} is not a payload config ({e})") from e
        if not isinstance(config, dict):
            raise CheckpointError(f"member {full!r}: 'config' is not an object")
        for meta in config.values():
            if not isinstance(meta, dict):
                raise CheckpointError(f"member {full!r}: a payload entry is not an object")
            member = posixpath.normpath(f"{folder}/{meta.get('path_name', '')}")
            if not meta.get("use_pickle", True) and (
                folder == "data/weights"
                or str(meta.get("path_name", "")).startswith(TENSOR_CONSTANT_FILENAME_PREFIX)
            ):
                raw.add(member)
            else:
                pickled.add(member)
    return raw - pickled, pickled


def _read_as_data(inner: str, raw: set[str]) -> bool:
    """Whether torch reads this member without unpickling it (JSON, text, raw tensors)."""
    folder, _, file = inner.rpartition("/")
    return (
        inner in _TEXT_MEMBERS
        or inner in raw
        or inner.startswith("extra/")
        or (folder == "models" and file.endswith(".json"))
        or (folder in ("data/weights", "data/constants") and file.endswith("_config.json"))
    )


def _loads_weights_only(data: bytes) -> bool:
    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError,
            AttributeError, ImportError, KeyError, IndexError, OSError):
        return False
    return True


def check_export_archive(path: Path, trust_pickle: bool) -> None:
    """Refuse a ``.pt2`` whose members would run code when torch.export.load reads them."""
    infos = members(path, "not a loadable torch.export program: corrupt zip archive")
    names = {_inner(i.filename): i.filename for i in infos if not i.is_dir()}
    if "archive_format" not in names:
        raise CheckpointError(f"{path}: not a torch.export archive (no archive_format member)")
    with zipfile.ZipFile(path) as archive:
        try:
            raw, pickled = _payloads(archive, names)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from e
        for inner, full in sorted(names.items()):
            if inner.endswith(_NATIVE_SUFFIXES):
                raise CheckpointError(
                    f"{path}: member {full!r} is a shared library, which would run native "
                    "code; AOTInductor packages are not supported"
                )
            if trust_pickle or (inner not in pickled and _read_as_data(inner, raw)):
                continue
            if not _loads_weights_only(archive.read(full)):
                raise CheckpointError(
                    f"{path}: member {full!r} needs full unpickling, which can run code "
                    f"hidden in the file; {_TRUST}"
                )


@contextlib.contextmanager
def weights_only_torch_load() -> Iterator[None]:
    """While active, every ``torch.load`` call is made with ``weights_only=True``."""
    import torch

    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = load  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = original  # type: ignore[assignment]


def archive_kind(path: Path) -> str | None:
    """``torch-export``, ``torchscript`` or ``torch-save`` for a zip from torch; else None."""
    inner = {_inner(i.filename) for i in members(path)}
    if "constants.pkl" in inner or any(m.startswith("code/") for m in inner):
        return "torchscript"
    if "archive_format" in inner or any(m.startswith("models/") for m in inner):
        return "torch-export"
    if "data.pkl" in inner:
        return "torch-save"
    return None
