"""Which package may import which: the allowed-imports table, checked on every module.

A unit is a package (or a named sub-package); a module belongs to the longest unit its
dotted name starts with. Each unit may import itself and the units the table lists, at
module level or inside a function. Imports under ``if TYPE_CHECKING:`` are annotations
only and are not counted. Drivers (the benchmark suite, its harnesses) run the whole
pipeline and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "convert_model.core"
RUNTIME = "convert_model.runtime"
SERVING = "convert_model.serving"
BUNDLE = "convert_model.bundle"
TRUNK = "convert_model"

ALLOWED: dict[str, set[str]] = {
    # The ground floor: errors, quiet, hashing, threads, names. Imports nothing of ours.
    CORE: set(),
    # Bundle code, copied into bundles: numpy + onnxruntime only.
    RUNTIME: set(),
    # Bundle code: the KServe predictor (numpy, onnxruntime, tokenizers, kserve; it loads
    # the bundle's own runtime/ copy from the bundle folder).
    SERVING: set(),
    "converters": {CORE, RUNTIME},
    "optimizers": {CORE},
    "benchmarks": {CORE, RUNTIME, "converters"},
    "reference_models": {CORE, "benchmarks"},
    BUNDLE: {CORE, RUNTIME, SERVING, "benchmarks", "converters"},
    # The trunk: options, state, stages, pipeline, CLI. It orchestrates every room.
    TRUNK: {CORE, RUNTIME, SERVING, BUNDLE, "converters", "optimizers", "benchmarks",
            "reference_models"},
}
DRIVERS = ("benchmarks.suite", "benchmarks.compare_optimum", "benchmarks.conftest",
           "benchmarks.fleet_vs_solo",
           "benchmarks.test_")
PACKAGES = ("convert_model", "converters", "optimizers", "benchmarks", "reference_models")


def _unit(module: str) -> str | None:
    matches = [u for u in ALLOWED if module == u or module.startswith(u + ".")]
    return max(matches, key=len) if matches else None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> list[tuple[int, str]]:
    """(line, module) of every import of ours in module ``name``, type-checking blocks out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # ``from pkg import sub``: the submodule decides the unit.
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return [(line, m) for line, m in found if m.split(".")[0] in PACKAGES]


def violations(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Every import under ``root`` that the table does not allow, as ``file:line: why``."""
    offenders = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(path, root)
            if name.startswith(DRIVERS):
                continue
            unit = _unit(name)
            if unit is None:
                offenders.append(f"{path.relative_to(root)}: belongs to no unit of the table")
                continue
            for line, imported in _imports(path, name):
                target = _unit(imported)
                if target is None or target == unit or target in ALLOWED[unit]:
                    continue
                offenders.append(f"{path.relative_to(root)}:{line}: {unit} imports {imported}")
    return offenders


def test_imports_follow_the_allowed_table():
    assert violations(ROOT) == []


def test_imports_table_names_only_known_units():
    for unit, allowed in ALLOWED.items():
        assert allowed <= set(ALLOWED), f"{unit} allows unknown units {allowed - set(ALLOWED)}"


def test_imports_checker_catches_an_upward_import_inside_a_function(tmp_path: Path):
    package = tmp_path / "optimizers"
    package.mkdir()
    (package / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from convert_model.state import ConversionState\n"
        "def f():\n    from convert_model.pipeline import convert\n"
    )
    assert violations(tmp_path, ("optimizers",)) == [
        "optimizers/bad.py:5: optimizers imports convert_model.pipeline.convert"
    ]
