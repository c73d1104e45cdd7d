"""Progress: plain lines off a terminal, a bar redrawn in place on one."""

from __future__ import annotations

import io

from convert_model.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_plain_prints_stage_lines_and_one_line_per_short_bar():
    stream = io.StringIO()
    progress = Progress(total=2, stream=stream)
    assert not progress.live
    with progress.stage("measure"):
        with progress.bar(3, "sweep") as bar:
            for step in ("a", "b", "c"):
                bar.advance(step)
        progress.note("measured")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/2] measure …"
    assert [line for line in lines if "sweep" in line] == [lines[1]]
    assert lines[1].startswith("      sweep [") and "3/3 c" in lines[1]
    assert lines[2] == "      measured" and lines[3].startswith("      done in ")
    assert "\r" not in stream.getvalue()


def test_progress_live_redraws_the_bar_in_place_on_a_terminal():
    stream = _Terminal()
    progress = Progress(total=1, stream=stream)
    assert progress.live
    with progress.stage("measure"):
        with progress.bar(2, "sweep") as bar:
            bar.advance("first")
            progress.note("a note keeps the bar below it")
            bar.advance("second")
    text = stream.getvalue()
    assert "\r\x1b[K" in text
    assert "1/2 first" in text and "2/2 second" in text
    assert "a note keeps the bar below it\n" in text
    final = [line for line in text.split("\n") if "sweep" in line][-1]
    assert final.endswith(final.split("\r\x1b[K")[-1]) and "2/2" in final


def test_progress_disabled_prints_nothing_even_on_a_terminal():
    stream = _Terminal()
    progress = Progress(total=1, enabled=False, stream=stream)
    with progress.stage("x"), progress.bar(2, "bar") as bar:
        bar.advance()
        progress.note("hidden")
    assert stream.getvalue() == ""
