"""A hook around the stages that time: whoever runs conversions side by side sets a guard.

Alone, ``timing_slot()`` does nothing. A fleet runner wraps ``convert`` in
``guarded(guard)``, where ``guard()`` returns a context manager that holds the node's one
timing slot, so that no two conversions on a node measure latency at the same time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar

Guard = Callable[[], AbstractContextManager[object]]

_GUARD: ContextVar[Guard | None] = ContextVar("convert_model_timing_guard", default=None)


@contextlib.contextmanager
def timing_slot() -> Iterator[None]:
    """Hold the timing slot set by ``guarded`` for the duration (no-op when none is set)."""
    guard = _GUARD.get()
    if guard is None:
        yield
        return
    with guard():
        yield


@contextlib.contextmanager
def guarded(guard: Guard) -> Iterator[None]:
    """Within this block, every ``timing_slot()`` holds ``guard()``; restored on exit."""
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)
