"""The pipeline's timing hook: a no-op alone, the guard's context inside ``guarded``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from convert_model.core.timing_slot import guarded, timing_slot


def test_timing_slot_holds_the_guard_only_inside_guarded():
    events: list[str] = []

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        events.append("take")
        try:
            yield
        finally:
            events.append("give back")

    with timing_slot():
        events.append("timed alone")
    with guarded(guard), timing_slot():
        events.append("timed in a fleet")
    with timing_slot():
        events.append("alone again")
    assert events == ["timed alone", "take", "timed in a fleet", "give back", "alone again"]
