from __future__ import annotations

from pathlib import Path

import pytest

from convert_model.core import limits
from convert_model.core.errors import CheckpointError, UsageError


def test_check_elements_sums_every_shape_of_one_input_set() -> None:
    assert limits.check_elements([(2, 3), (4,)], "x") == 10
    with pytest.raises(UsageError, match="2\\^31"):
        limits.check_elements([(2**16, 2**15), (2**16, 2**15), (1,)], "x")


@pytest.mark.parametrize("threads", [0, -1, 9, 100_000])
def test_check_threads_refuses_outside_one_to_four_times_the_cores(threads: int) -> None:
    with pytest.raises(UsageError, match="--threads"):
        limits.check_threads(threads, usable=2)


def test_check_threads_takes_up_to_four_times_the_cores() -> None:
    limits.check_threads(8, usable=2)
    limits.check_threads(None, usable=2)


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("inf"), float("nan"), 1e12])
def test_check_seconds_refuses_what_is_not_a_finite_positive_limit(seconds: float) -> None:
    with pytest.raises(UsageError, match="--timeout"):
        limits.check_seconds(seconds, "--timeout")


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert limits.json_depth('{"a": "[[[[", "b": [{"c": "\\"]"}]}') == 3


def test_load_json_refuses_deep_nesting_before_parsing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nested 100000 deep"):
        limits.load_json("[" * 100_000 + "]" * 100_000, tmp_path / "x.json")
