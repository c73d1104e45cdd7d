"""The exception tree shared by every stage.

``ConvertModelError`` is the root. A user error (bad checkpoint, bad option) is a
``CheckpointError`` or ``UsageError``; both are ``ValueError`` too, so library callers
can catch them the usual way. The CLI maps the tree onto exit codes (DESIGN.md).
"""

from __future__ import annotations


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def summary(e: BaseException) -> str:
    """``Type: first line of the message`` (just ``Type`` when the message is empty)."""
    lines = str(e).strip().splitlines()
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
