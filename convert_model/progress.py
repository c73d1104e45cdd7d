"""Progress for long work, on stderr: stage lines, and live bars when stderr is a terminal.

On a terminal a stage shows a ticking elapsed time and ``bar`` draws a bar redrawn in place;
anywhere else (a CI log, a pipe) a bar prints a plain line every few seconds and one when
it ends, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from convert_model.core.text import printable

_CLEAR = "\r\x1b[K"
_WIDTH = 24
_PLAIN_EVERY_S = 5.0  # a plain-mode bar prints its last step, and one line per this long
_TICK_SECONDS = 0.25


class Bar:
    """One bar's state: steps done of ``total``; drawn by the Progress that made it."""

    def __init__(self, owner: Progress, total: int, label: str) -> None:
        self.owner = owner
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.step = ""
        self.start = self._last_line = time.perf_counter()

    def advance(self, step: str = "", n: int = 1) -> None:
        """Count ``n`` more steps done; ``step`` says what was just done."""
        self.done = min(self.done + n, self.total)
        self.step = step
        self.owner._draw_bar(self)

    def line(self) -> str:
        """The bar as one line of text."""
        filled = round(_WIDTH * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        step = f" {self.step}" if self.step else ""
        return (
            f"      {self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
            f"{self.done}/{self.total}{step} {elapsed:.1f}s"
        )

    def due_plain(self) -> bool:
        """Whether plain mode prints this step: the last, and one every few seconds."""
        now = time.perf_counter()
        if self.done >= self.total or now - self._last_line >= _PLAIN_EVERY_S:
            self._last_line = now
            return True
        return False


class Progress:
    """Prints ``[n/N] stage …`` lines and bars; silent when ``enabled`` is false.

    Args:
        total: how many stages the work has.
        enabled: print anything at all.
        stream: where to print (default stderr).
        live: redraw lines in place (default: when ``stream`` is a terminal).
    """

    def __init__(
        self,
        total: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.index = 0
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live and enabled
        self._lock = threading.Lock()
        self._status = ""  # the line drawn in place under the last printed line (live only)
        self._stage = ""
        self._stage_start = 0.0
        self._bar: Bar | None = None

    def _print(self, line: str) -> None:
        """Print a permanent line, keeping the live status line below it."""
        with self._lock:
            if self._status:
                self.stream.write(_CLEAR)
            self.stream.write(printable(line) + "\n")
            if self._status:
                self.stream.write(self._status)
            self.stream.flush()

    def _set_status(self, line: str) -> None:
        with self._lock:
            self._status = printable(line)
            self.stream.write(_CLEAR + self._status)
            self.stream.flush()

    def note(self, message: str) -> None:
        """Print a line under the current stage."""
        if self.enabled:
            self._print(f"      {message}")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Announce a stage, tick its elapsed time on a terminal, and print its duration."""
        self.index += 1
        self._stage = name
        self._stage_start = start = time.perf_counter()
        if self.enabled:
            self._print(f"[{self.index}/{self.total}] {name} …")
        stop = threading.Event()
        ticker = None
        if self.live:
            ticker = threading.Thread(target=self._tick, args=(stop,), daemon=True)
            ticker.start()
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                ticker.join()
                self._set_status("")
        if self.enabled:
            self._print(f"      done in {time.perf_counter() - start:.1f}s")

    def _tick(self, stop: threading.Event) -> None:
        """Redraw the stage's elapsed time until ``stop``, unless a bar has the line."""
        while not stop.wait(_TICK_SECONDS):
            if self._bar is None:
                elapsed = time.perf_counter() - self._stage_start
                self._set_status(f"      {self._stage} … {elapsed:.0f}s")
            else:
                self._set_status(self._bar.line())

    @contextlib.contextmanager
    def bar(self, total: int, label: str) -> Iterator[Bar]:
        """A bar of ``total`` steps: redrawn in place on a terminal, a few plain lines elsewhere.

        Call ``advance`` on what it yields after each step.
        """
        bar = Bar(self, total, label)
        self._bar = bar
        if self.live:
            self._set_status(bar.line())
        try:
            yield bar
        finally:
            self._bar = None
            if self.live:
                self._set_status("")
                self._print(bar.line())

    def _draw_bar(self, bar: Bar) -> None:
        if not self.enabled:
            return
        if self.live:
            self._set_status(bar.line())
        elif bar.due_plain():
            self._print(bar.line())
