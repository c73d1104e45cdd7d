"""The hostile-input corpus covers every class of issue 14, each with several cases."""

from __future__ import annotations

from tests.convert_model import (
    test_hostile_archives,
    test_hostile_data,
    test_hostile_limits,
    test_hostile_out,
    test_hostile_paths,
    test_hostile_values,
)

CLASSES = {
    "archives that would run code": test_hostile_archives.CASES,
    "paths leaving the checkpoint": test_hostile_paths.CASES,
    "OUT folders that must not be replaced": test_hostile_out.CASES,
    "sizes that would exhaust the machine": test_hostile_limits.CASES,
    "bad values where they enter": test_hostile_values.CASES,
    "bad data files": test_hostile_data.CASES,
}


def test_hostile_corpus_covers_every_class_with_several_cases() -> None:
    thin = {name: len(cases) for name, cases in CLASSES.items() if len(cases) < 5}
    assert not thin, thin
    names = [n for cases in CLASSES.values() for n in cases]
    assert len(names) == len(set(names)), "a case name is used twice"
    assert len(names) >= 80
