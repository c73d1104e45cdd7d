"""Percent-format source to nbformat 4 notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_models.notebook import Cell, code_of, notebook_json, parse_percent, write_notebook

SOURCE = '''"""Module docstring, dropped."""

# %% [markdown]
# # Title
#
# Some text.

# %%
x = 1

# %%
y = x + 1
'''


def test_parse_percent_splits_markdown_and_code_cells() -> None:
    assert parse_percent(SOURCE) == (
        Cell(cell_type="markdown", source="# Title\n\nSome text."),
        Cell(cell_type="code", source="x = 1"),
        Cell(cell_type="code", source="y = x + 1"),
    )


def test_code_of_joins_the_code_cells_in_order() -> None:
    namespace: dict[str, int] = {}
    exec(code_of(parse_percent(SOURCE)), namespace)
    assert namespace["y"] == 2


def test_parse_percent_raises_when_a_marker_is_unknown() -> None:
    with pytest.raises(ValueError, match=r"unknown cell marker '# %% \[raw\]'"):
        parse_percent("# %% [raw]\nx = 1\n")


def test_parse_percent_raises_when_there_is_no_code_cell() -> None:
    with pytest.raises(ValueError, match="no code cell"):
        parse_percent("# %% [markdown]\n# text\n")


def test_write_notebook_writes_nbformat_4_5_with_unexecuted_code_cells(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "n.ipynb", parse_percent(SOURCE))
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == notebook_json(parse_percent(SOURCE))
    assert (document["nbformat"], document["nbformat_minor"]) == (4, 5)
    code = [cell for cell in document["cells"] if cell["cell_type"] == "code"]
    assert [cell["outputs"] for cell in code] == [[], []]
    assert all(cell["execution_count"] is None for cell in code)
    assert document["cells"][0]["source"] == ["# Title\n", "\n", "Some text."]
