"""Fixtures: the hostile-input corpus's tiny tree models; bundles for the serving tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.generation import GenerationTimingConfig
from convert_model import convert
from tests.fixtures.models import Zoo


class HostileZoo:
    """The session zoo, with ``trees``: a tiny XGBoost JSON and LightGBM text model."""

    def __init__(self, zoo: Zoo, trees: dict[str, Path]) -> None:
        self._zoo = zoo
        self.trees = trees

    def __getattr__(self, name: str) -> Any:
        return getattr(self._zoo, name)


@pytest.fixture(scope="session")
def hostile_zoo(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> HostileZoo:
    import lightgbm as lgb
    import xgboost as xgb

    root = tmp_path_factory.mktemp("trees")
    x = np.random.default_rng(0).random((60, 3))
    y = (x[:, 0] > 0.5).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, y), 2)
    booster.save_model(str(root / "model.json"))
    model = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4},
                      lgb.Dataset(x, y), 2)
    model.save_model(str(root / "model.txt"))
    return HostileZoo(model_zoo, {"xgboost": root / "model.json", "lightgbm": root / "model.txt"})


FAST = {"precision": "fp32", "sweep": "off"}


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
