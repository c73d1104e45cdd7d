"""Writing a Jupyter notebook (nbformat 4) from percent-format Python source.

Percent format is the one Jupytext and VS Code use: a line `# %%` starts a
code cell, `# %% [markdown]` a Markdown cell whose lines are `# `-commented.
Keeping a notebook as such source lets the same text be run directly (to
build the model the notebook builds) and written out as the `.ipynb` a
researcher would hand over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CellType = Literal["code", "markdown"]


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One notebook cell: its type and its source text."""

    cell_type: CellType
    source: str


def parse_percent(source: str) -> tuple[Cell, ...]:
    """Split percent-format source into cells, dropping what precedes the first marker."""
    cells: list[Cell] = []
    cell_type: CellType | None = None
    lines: list[str] = []

    def close() -> None:
        if cell_type is None:
            return
        text = "\n".join(lines).strip("\n")
        if cell_type == "markdown":
            text = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in text.splitlines()
            )
        if text.strip():
            cells.append(Cell(cell_type=cell_type, source=text))

    for line in source.splitlines():
        if line.startswith("# %%"):
            close()
            marker = line[4:].strip()
            if marker not in ("", "[markdown]"):
                raise ValueError(f"unknown cell marker {line!r}; use '# %%' or '# %% [markdown]'")
            cell_type, lines = ("markdown" if marker else "code"), []
        else:
            lines.append(line)
    close()
    if not any(cell.cell_type == "code" for cell in cells):
        raise ValueError("percent-format source has no code cell ('# %%' line)")
    return tuple(cells)


def code_of(cells: tuple[Cell, ...]) -> str:
    """The code cells joined in order: what running the notebook top to bottom executes."""
    return "\n\n".join(cell.source for cell in cells if cell.cell_type == "code") + "\n"


def notebook_json(cells: tuple[Cell, ...]) -> dict[str, Any]:
    """The nbformat 4.5 document for `cells`, unexecuted, with stable cell ids."""

    def lines(text: str) -> list[str]:
        return text.splitlines(keepends=True)

    documents: list[dict[str, Any]] = []
    for index, cell in enumerate(cells):
        document: dict[str, Any] = {
            "cell_type": cell.cell_type,
            "id": f"cell-{index}",
            "metadata": {},
            "source": lines(cell.source),
        }
        if cell.cell_type == "code":
            document.update(execution_count=None, outputs=[])
        documents.append(document)
    return {
        "cells": documents,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "pygments_lexer": "ipython3"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path: Path, cells: tuple[Cell, ...]) -> Path:
    """Write `cells` as an `.ipynb` file."""
    path.write_text(
        json.dumps(notebook_json(cells), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path
