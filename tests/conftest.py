"""Shared fixtures: tiny models in every checkpoint form, built once per session, offline."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

import convert_model  # noqa: F401  sets OMP_WAIT_POLICY before the fixtures load torch
from tests.fixtures import models


@pytest.fixture(scope="session")
def model_zoo(tmp_path_factory: pytest.TempPathFactory) -> models.Zoo:
    """Lazily built tiny checkpoints, shared by every test in the session."""
    return models.Zoo(tmp_path_factory.mktemp("zoo"))
