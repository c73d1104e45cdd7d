"""Bundles for the serving and deployment tests, each converted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.generation import GenerationTimingConfig
from convert_model import convert
from tests.fixtures.models import Zoo

FAST = {"precision": "fp32", "sweep": None}


@pytest.fixture(scope="session")
def text_bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT sequence classifier (3 labels) with its WordPiece tokenizer."""
    out = tmp_path_factory.mktemp("serving") / "bert"
    convert(model_zoo.bert, out=out, **FAST)
    return out


@pytest.fixture(scope="session")
def tabular_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The XGBoost revert-risk reference: 30 named features, NaN for missing."""
    out = tmp_path_factory.mktemp("serving") / "xgboost"
    convert("reference:revertrisk-language-agnostic", out=out, **FAST)
    return out


@pytest.fixture(scope="session")
def generation_bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny mBART with its generation graphs and the bundle's runtime/ loop."""
    out = tmp_path_factory.mktemp("serving") / "mbart"
    convert(model_zoo.mbart, out=out, generation_timing=GenerationTimingConfig(prompts=2, rounds=1),
            **FAST)
    return out


@pytest.fixture(scope="session")
def tensor_bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain module (torch.export): tensors in, tensors out."""
    out = tmp_path_factory.mktemp("serving") / "tensor"
    convert(model_zoo.custom_pt2, out=out, **FAST)
    return out
