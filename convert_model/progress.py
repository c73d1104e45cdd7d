"""Progress lines for long work, on stderr, each stage with its elapsed time."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO


class Progress:
    """Prints ``[n/N] stage: message`` lines; silent when ``enabled`` is false."""

    def __init__(self, total: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.index = 0

    def note(self, message: str) -> None:
        """Print a line under the current stage."""
        if self.enabled:
            print(f"      {message}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Announce a stage, and its duration when it ends."""
        self.index += 1
        start = time.perf_counter()
        if self.enabled:
            print(f"[{self.index}/{self.total}] {name} …", file=self.stream, flush=True)
        yield
        if self.enabled:
            print(f"      done in {time.perf_counter() - start:.1f}s", file=self.stream, flush=True)
