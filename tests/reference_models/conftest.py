"""Shared fixtures: each reference model is built once per session, into a temporary cache.

Readability (BERT-base) is left out of this suite: building it takes about a
minute and scoring its eval set about as long on 2 CPU cores. Its build,
determinism and metric were measured by hand (see issue 3's closing note).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import reference_models
from reference_models import BuiltReference
from reference_models.cache import MARKER

FAST_MODELS = (
    # The tree models build in about a second: first, so their tests need not wait for the
    # second build's neural networks.
    "articlequality",
    "revertrisk-language-agnostic",
    "revertrisk-catboost",
    "article-descriptions",
    "logo-detection",
    "outlink-topic",
    "outlink-topic-fasttext",
    "revertrisk-multilingual",
)
"""Every reference model but readability: the ones this suite builds."""

REPO_ROOT = Path(reference_models.__file__).resolve().parent.parent

_SECOND_BUILD = """
import sys
from pathlib import Path
import reference_models
for name in sys.argv[2:]:
    reference_models.build(name, cache_dir=Path(sys.argv[1]), progress=lambda line: None)
"""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test that takes `fast_model` once per fast reference model."""
    if "fast_model" in metafunc.fixturenames:
        metafunc.parametrize("fast_model", FAST_MODELS)


@pytest.fixture(scope="session")
def fast_models() -> tuple[str, ...]:
    """The names of the reference models this suite builds."""
    return FAST_MODELS


def _with_repo_root(pythonpath: str | None) -> str:
    return os.pathsep.join([str(REPO_ROOT), *([pythonpath] if pythonpath else [])])


@dataclass(frozen=True, kw_only=True)
class SecondBuild:
    """The fast models built again by a child process, into their own cache folder."""

    process: subprocess.Popen[str]
    cache_dir: Path

    def folder(self, name: str, *, timeout_s: float = 600.0) -> Path:
        """Wait until the child has built `name` (in FAST_MODELS order); return its folder."""
        folder = self.cache_dir / reference_models.get(name).folder_name
        deadline = time.monotonic() + timeout_s
        while not (folder / MARKER).is_file():
            if self.process.poll() is not None:
                _, stderr = self.process.communicate()
                if (folder / MARKER).is_file():
                    break
                pytest.fail(
                    f"the second build ended (exit code {self.process.returncode}) "
                    f"without building {name}:\n{stderr}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the second build of {name} took over {timeout_s:.0f} s")
            time.sleep(0.5)
        return folder


@pytest.fixture(scope="session")
def second_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondBuild]:
    """Start a second build of the fast models in a child process, beside the session's own builds.

    Every build trains on one thread, and both this child and the session
    build in FAST_MODELS order, so on a two-core machine the second build
    (for the determinism test) costs the suite little wall time.
    """
    cache_dir = tmp_path_factory.mktemp("reference-second-build")
    process = subprocess.Popen(
        [sys.executable, "-c", _SECOND_BUILD, str(cache_dir), *FAST_MODELS],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": _with_repo_root(os.environ.get("PYTHONPATH")),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield SecondBuild(process=process, cache_dir=cache_dir)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="session")
def reference_cache(tmp_path_factory: pytest.TempPathFactory, second_build: SecondBuild) -> Path:
    """The session's reference cache folder (the second build starts first, to run alongside)."""
    return tmp_path_factory.mktemp("reference-cache")


@pytest.fixture(scope="session")
def built(reference_cache: Path) -> Callable[[str], BuiltReference]:
    """Build a reference model into the session cache on first use; later calls reuse it."""

    def build(name: str) -> BuiltReference:
        return reference_models.build(name, cache_dir=reference_cache, progress=lambda line: None)

    return build
