"""Fixtures of the pytest-benchmark suite: reference models converted once per session.

Run it apart from the unit tests: ``python -m pytest benchmarks/ --benchmark-json out.json``;
``benchmarks/suite.py`` lists the environment variables that choose models and bundles.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.suite import Converted, convert_reference


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Converted]]:
    """Converts a reference model on first use (or reuses its bundle) and returns it."""
    root_text = os.environ.get("CONVERT_MODEL_BENCH_OUT")
    root = Path(root_text) if root_text else tmp_path_factory.mktemp("bundles")
    root.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Converted] = {}

    def get(name: str) -> Converted:
        if name not in cache:
            cache[name] = convert_reference(name, root)
        return cache[name]

    yield get
