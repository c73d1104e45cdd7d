"""The exception tree shared by every stage.

``ConvertModelError`` is the root. A user error (bad checkpoint, bad option) is a
``CheckpointError`` or ``UsageError``; both are ``ValueError`` too, so library callers
can catch them the usual way. The CLI maps the tree onto exit codes (DESIGN.md).
"""

from __future__ import annotations

import re

# Terminal escape sequences (colours, cursor moves) that torch.export puts in its messages.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-_]")
# Lines that say where, not what: tracebacks, banners, pointers to docs and log settings.
_NOISE = re.compile(
    r"^(Traceback \(most recent call last\)|During handling of|The above exception|"
    r"File \"|from user code|Set TORCH_LOGS|For more information|You can suppress|"
    r"[-=_*~^ ]+$)"
)


def plain(text: str) -> str:
    """``text`` without terminal escape sequences."""
    return _ANSI.sub("", text)


_SUMMARY = "## Exception summary"  # torch.onnx's wrapper puts the real cause under it
_CLASS = re.compile(r"^<class '(?:[\w.]+\.)?(\w+)'>:\s*")


def meaningful_lines(text: str) -> list[str]:
    """The message's lines that say what went wrong: escapes removed, noise lines dropped.

    When the message wraps another under ``## Exception summary`` (torch.onnx's
    exporter), the wrapped cause comes first, with its ``Caused by: (file:line)``.
    """
    text = plain(text)
    head, found, tail = text.partition(_SUMMARY)
    lines = [line.strip() for line in (tail if found else head).splitlines()]
    lines = [_CLASS.sub(r"\1: ", line) for line in lines if line and not _NOISE.match(line)]
    if found and lines:
        caused = next((line for line in lines if line.startswith("Caused by:")), None)
        if caused and caused is not lines[0]:
            lines[0] = f"{lines[0]} ({caused})"
    return lines


def first_line(e: BaseException) -> str:
    """The first meaningful line of an exception's message, or its type name when none."""
    lines = meaningful_lines(str(e))
    return lines[0] if lines else type(e).__name__


def summary(e: BaseException) -> str:
    """``Type: first meaningful line of the message`` (just ``Type`` when there is none)."""
    lines = meaningful_lines(str(e))
    return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class ConvertModelError(Exception):
    """Root of every error convert-model raises on purpose."""

    stage: str = "convert"


class CheckpointError(ConvertModelError, ValueError):
    """The checkpoint cannot be read, recognised or loaded."""

    stage = "load"


class UsageError(ConvertModelError, ValueError):
    """An option or argument is malformed or contradicts another."""

    stage = "usage"


class ExportError(ConvertModelError):
    """No export strategy produced a valid ONNX graph."""

    stage = "export"


class OptimizationError(ConvertModelError):
    """An ONNX-to-ONNX pass failed."""

    stage = "optimize"


class BundleError(ConvertModelError):
    """The bundle cannot be written or read (output folder taken, disk full, tampered)."""

    stage = "bundle"


class ParityError(ConvertModelError):
    """A parity or latency gate failed; ``failures`` lists every failing check."""

    stage = "parity"

    def __init__(self, message: str, failures: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures
