"""Limits checked before anything is allocated, so a tiny file cannot exhaust the machine.

Each check raises UsageError (an option) or CheckpointError (a file) naming the value, the
limit and where it came from; callers check first and allocate after.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError, UsageError

MAX_ELEMENTS = 2**31
"""Elements of all the tensors of one input set together (8 GiB of float32)."""
MAX_DIMS = 32
MAX_FEATURES = 100_000
"""Features of a tabular model: 256 example rows of them stay under 100 MB."""
MAX_JSON_DEPTH = 64
THREADS_PER_CORE = 4
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def check_elements(shapes: Iterable[Iterable[int]], what: str) -> int:
    """The total element count of ``shapes``; UsageError when over MAX_ELEMENTS."""
    total = 0
    for shape in shapes:
        dims = tuple(int(d) for d in shape)
        if len(dims) > MAX_DIMS:
            raise UsageError(f"{what}: {len(dims)} dims; at most {MAX_DIMS} are supported")
        total += math.prod(dims)
        if total > MAX_ELEMENTS:
            raise UsageError(
                f"{what}: {total:,} elements in one input set, over the limit of "
                f"{MAX_ELEMENTS:,} (2^31)"
            )
    return total


def check_threads(threads: int | None, usable: int) -> None:
    """``--threads`` between 1 and THREADS_PER_CORE times the usable cores."""
    if threads is None:
        return
    limit = THREADS_PER_CORE * max(usable, 1)
    if not 1 <= threads <= limit:
        raise UsageError(
            f"--threads must be between 1 and {limit} ({THREADS_PER_CORE}x the {usable} usable "
            f"cores), got {threads}"
        )


def check_seconds(seconds: float, option: str, limit: float = 7 * 24 * 3600.0) -> None:
    """A finite, positive time limit of at most a week."""
    if not (math.isfinite(seconds) and 0 < seconds <= limit):
        raise UsageError(f"{option} must be a finite number of seconds in (0, {limit:g}], "
                         f"got {seconds}")


def json_depth(text: str) -> int:
    """The deepest nesting of objects and arrays in JSON ``text`` (strings ignored)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def load_json(data: bytes | str, path: Path, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON from ``path`` whose nesting is at most ``max_depth``; CheckpointError else."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON (not UTF-8: {e.reason})") from e
    if not text.strip():
        raise CheckpointError(f"{path}: the file is empty")
    depth = json_depth(text)
    if depth > max_depth:
        raise CheckpointError(
            f"{path}: JSON nested {depth} deep; at most {max_depth} levels are accepted"
        )
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
