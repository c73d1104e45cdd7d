"""Hand freed memory back to the system between stages, so peaks do not stack up.

Each stage opens and drops onnxruntime sessions and numpy buffers; glibc keeps what they
freed in its arenas, so the process's resident size only grows, and one stage's peak sits
on top of every earlier stage's leftovers. ``release`` collects cycles and asks glibc to
return free pages (``malloc_trim``); elsewhere (musl, macOS) it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release() -> None:
    """Collect garbage and return the allocator's free pages to the system, where it can."""
    gc.collect()
    trim = _trim()
    if trim is not None:
        trim(0)
