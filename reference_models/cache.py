"""Building reference models on demand into a cache folder, atomically."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from convert_model.core.hashing import sha256_file
from reference_models.handoff import EVAL_FILE
from reference_models.registry import (
    BuiltReference,
    Progress,
    ReferenceModel,
    ReferenceModelError,
    get,
)

MARKER = "reference.json"
"""Written last in a build, with its provenance: a folder without it is not a finished build."""

_VERSIONED_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy")


def cache_root() -> Path:
    """The convert-model cache folder.

    $CONVERT_MODEL_CACHE if set, else $XDG_CACHE_HOME/convert-model, else
    ~/.cache/convert-model.
    """
    if explicit := os.environ.get("CONVERT_MODEL_CACHE"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "convert-model"


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(
    name: str,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> BuiltReference:
    """Build reference model `name` unless a finished build is cached, and return where it is.

    Builds live in `cache_dir / f"{name}-{version}"`; `cache_dir` defaults to
    `cache_root() / "reference"`. A build is written into a temporary folder
    beside its final place and renamed into place when finished, so a crash
    never leaves a half-built entry. `force` rebuilds a cached entry.
    `progress` gets one line per step (default: printed to stderr).
    """
    model = get(name)
    report = progress or _print_progress

    def say(line: str) -> None:
        report(f"{model.name}: {line}")

    parent = Path(cache_dir) if cache_dir is not None else cache_root() / "reference"
    folder = parent / model.folder_name
    if force or not (folder / MARKER).is_file():
        _build_into(model, folder, say)
    else:
        say(f"cached at {folder}")
    return BuiltReference(
        model=model,
        folder=folder,
        checkpoint=folder / model.checkpoint,
        options=model.absolute_options(folder),
        eval_data=folder / EVAL_FILE,
    )


def _usable_cache(parent: Path) -> None:
    """ReferenceModelError when the cache folder cannot be made or written."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):  # writable, even on a read-only mount?
            pass
    except OSError as e:
        raise ReferenceModelError(
            f"{parent}: cannot be the reference-model cache ({e.strerror}); set "
            "$CONVERT_MODEL_CACHE to a writable folder"
        ) from e


def _build_into(model: ReferenceModel, folder: Path, say: Progress) -> None:
    _usable_cache(folder.parent)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".building", dir=folder.parent)
    )
    try:
        started = time.perf_counter()
        say(f"building in {staging}")
        model.builder(staging, say)
        missing = [p for p in (model.checkpoint, EVAL_FILE) if not (staging / p).exists()]
        if missing:
            raise RuntimeError(
                f"{model.name}: the build wrote no {', '.join(missing)}; "
                "this is a bug in its builder"
            )
        seconds = time.perf_counter() - started
        _write_marker(model, staging, seconds)
        _move_into_place(staging, folder)
        say(f"built in {seconds:.1f} s at {folder}")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_marker(model: ReferenceModel, folder: Path, seconds: float) -> None:
    files = {
        str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }
    record = {
        "name": model.name,
        "version": model.version,
        "summary": model.summary,
        "form": model.form,
        "checkpoint": model.checkpoint,
        "convert_options": dict(model.convert_options),
        "metric": model.metric,
        "metric_output": model.metric_output,
        "chance": model.chance,
        "build_seconds": round(seconds, 2),
        "built_with": {
            "python": platform.python_version(),
            **{package: metadata.version(package) for package in _VERSIONED_PACKAGES},
        },
        "sha256": files,
    }
    (folder / MARKER).write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename the finished build to `folder`, replacing an old or unfinished one there."""
    if folder.exists():
        # Move the old entry aside before deleting it, so the rename below never
        # meets a half-deleted folder.
        retired = Path(
            tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent)
        )
        folder.replace(retired / "entry")
        shutil.rmtree(retired, ignore_errors=True)
    try:
        staging.rename(folder)
    except OSError:
        # Another process finished the same build first; its copy is as good as ours.
        if not (folder / MARKER).is_file():
            raise
