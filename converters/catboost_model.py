"""Load a CatBoost model file (``.cbm``, ``save_model``) with numeric features.

The original runs through CatBoost's own ``predict`` (``prediction_type="Probability"`` for
classifiers, the raw formula value for regressors); the graph takes one float32 matrix
``input`` like the other tree forms. Categorical, text and embedding features are refused:
CatBoost's ONNX export takes numeric features only, and hashing categories the way CatBoost
does would need its own statistics outside the graph.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import CheckpointError, first_line
from converters.registry import LoadOptions, register_loader
from converters.tabular import EXTREMES, import_extra, tabular_model
from converters.types import CheckpointForm, LoadedModel

CLASSIFIER_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")
# CatBoost's nan_mode: how a missing value (NaN) is compared with the split borders.
NAN_MODES = {"Min": "NaN (below every border)", "Max": "NaN (above every border)"}


def _non_numeric(model: Any) -> list[str]:
    """Names of the features CatBoost's ONNX export cannot take (categorical, text, embedding)."""
    names = list(model.feature_names_)
    found = []
    for kind, getter in (("categorical", "get_cat_feature_indices"),
                         ("text", "get_text_feature_indices"),
                         ("embedding", "get_embedding_feature_indices")):
        indices: list[int] = list(getattr(model, getter, list)())
        found += [f"{names[i]} ({kind})" for i in indices]
    return found


@register_loader(CheckpointForm.CATBOOST)
def load_catboost(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """A CatBoost classifier or regressor saved in CatBoost's binary format."""
    catboost = import_extra("catboost", extra="catboost")
    model = catboost.CatBoost()
    try:
        model.load_model(str(path), format="cbm")
    except catboost.CatBoostError as e:
        raise CheckpointError(f"{path}: not a loadable CatBoost model ({first_line(e)})") from e
    refused = _non_numeric(model)
    if refused:
        raise CheckpointError(
            f"{path}: CatBoost's ONNX export takes numeric features only; this model has "
            f"{', '.join(refused)}"
        )
    params = model.get_all_params()
    loss = str(params.get("loss_function", "")).split(":")[0]
    classifier = loss in CLASSIFIER_LOSSES
    nan_mode = str(params.get("nan_mode", "Min"))
    extremes = EXTREMES["catboost"]
    if nan_mode not in NAN_MODES:  # "Forbidden": CatBoost refuses NaN at prediction time
        extremes = tuple(v for v in extremes if not math.isnan(v))
    prediction_type = "Probability" if classifier else "RawFormulaVal"

    def predict(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(matrix, prediction_type=prediction_type))

    loaded = tabular_model(
        path,
        form,
        model,
        framework="catboost",
        names=[str(n) for n in model.feature_names_],
        classifier=classifier,
        thresholds={int(k): list(v) for k, v in model.get_borders().items()},
        predict=predict,
        missing="NaN" if nan_mode in NAN_MODES else "not allowed",
        options=options,
        model_type=f"catboost {loss}",
        extremes=extremes,
    )
    from dataclasses import replace

    schema = {**(loaded.input_schema or {}), "nan_mode": nan_mode}
    notes = (*loaded.notes, f"missing values: nan_mode {nan_mode}: "
             f"{NAN_MODES.get(nan_mode, 'NaN is refused')}")
    return replace(loaded, input_schema=schema, notes=notes)
