from __future__ import annotations

import pytest

from convert_model.core.text import one_line, printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    ("a\rb", "a\\x0db"),
    ("mod\udce9l", "mod\\udce9l"),
    ("right\u202eleft", "right\\u202eleft"),
    ("\x9b2J", "\\x9b2J"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
])
def test_printable_escapes_control_and_format_characters(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_keeps_every_script_and_symbol() -> None:
    text = "modèle 日本語 ümlaut … → ✓ été"
    assert printable(text) == text


def test_one_line_joins_lines_and_escapes_the_rest() -> None:
    assert one_line("first\n  second\tthird\r\x1b[2J") == "first second third\\x0d\\x1b[2J"
