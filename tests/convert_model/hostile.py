"""The hostile-input harness: every case must be refused the way DESIGN.md promises.

A case is exit code 2 with exactly one stderr line naming the fault (no traceback), no
marker file (payloads that would run code write one), nothing written outside OUT, no
partial OUT, and the checkpoint's bytes unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert_model import cli
from tests.fixtures.models import Zoo

MARKER = "PWNED"


@dataclass(frozen=True, kw_only=True)
class Case:
    """One hostile input: the CLI arguments and the words its one error line must hold."""

    args: list[str]
    needles: list[str]
    checkpoint: Path | None = None  # whose bytes must stay as they are
    marker: Path | None = None  # created only if the payload ran
    extra_files: tuple[Path, ...] = field(default=())  # outside tmp, also must not change


Builder = Callable[[Zoo, Path], Any]


def registry() -> tuple[dict[str, Builder], Callable[[str], Callable[[Builder], Builder]]]:
    """A per-file case table and its decorator (a name registered twice is an error)."""
    cases: dict[str, Builder] = {}

    def case(name: str) -> Callable[[Builder], Builder]:
        def register(fn: Builder) -> Builder:
            assert name not in cases, f"duplicate case {name}"
            cases[name] = fn
            return fn

        return register

    return cases, case


def payload(marker: Path) -> str:
    """Python source that creates ``marker``: what a hostile file tries to run."""
    return f"open({str(marker)!r}, 'w').write({MARKER!r})"


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file (and symlink) under ``roots``, by path, with its content digest."""
    found: dict[str, str] = {}
    for root in roots:
        if root.is_file() or root.is_symlink():
            items = [root]
        elif root.is_dir():
            items = [Path(d) / n for d, dirs, files in os.walk(root) for n in (*dirs, *files)]
        else:
            items = []
        for p in items:
            if p.is_symlink():
                found[str(p)] = "link:" + os.readlink(p)
            elif p.is_file():
                found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                found[str(p)] = "dir"
    return found


def assert_refused(built: Case, tmp: Path, capsys, run: Callable[[list[str]], int] = cli.main,
                   ) -> str:
    """Run the case in-process and check every promise; return the error line."""
    out = tmp / "out"
    args = list(built.args)
    verifying = bool(args) and args[0] == "verify"
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
    elif not verifying:
        args += ["--out", str(out)]
    watched = (tmp, *built.extra_files, *([built.checkpoint] if built.checkpoint else []))
    before = snapshot(*watched)
    capsys.readouterr()
    code = run(args if verifying else [*args, "-q"])
    captured = capsys.readouterr()
    assert code == 2, f"exit {code}: {captured.err}"
    assert "Traceback" not in captured.err, captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("convert-model: error: "), lines[0]
    for needle in built.needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    if built.marker is not None:
        assert not built.marker.exists(), "the payload ran"
    after = snapshot(*watched)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    stray = {p for p in changed if not p.endswith(f".{out.name}.lock")}
    assert not stray, f"written or changed: {sorted(stray)}"
    return lines[0]
