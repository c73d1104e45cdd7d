"""Fixtures of the hostile-input corpus: the session zoo plus tiny tree models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
