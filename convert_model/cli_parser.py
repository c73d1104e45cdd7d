"""The argument parser every command shares: a usage error is one line and exit code 2."""

from __future__ import annotations

import argparse

from convert_model.core.errors import UsageError


class LineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one UsageError line instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Raise the usage error, naming the command's help."""
        raise UsageError(f"{message} (see {self.prog} --help)")
