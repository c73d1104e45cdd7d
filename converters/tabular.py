"""Load gradient-boosted trees and scikit-learn models: XGBoost, LightGBM, skops, pickles.

The original runs through the library's own prediction (``predict`` on a Booster,
``predict_proba`` on an estimator). The graph takes one float32 matrix ``input``
(rows × features, in the model's feature order); classifiers return ``label`` and
``probabilities``, regressors ``variable``.

Example inputs are adversarial on purpose: feature values exactly on the trees' split
thresholds and one float32 step either side, NaN, ±inf and very large values, because
that is where float32/float64 threshold handling differs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import CheckpointError, UsageError, first_line
from converters.registry import LoadOptions, register_loader
from converters.tabular_checks import check_lightgbm_text, check_xgboost
from converters.types import CheckpointForm, Inputs, LoadedModel, Outputs

INPUT = "input"
CLASSIFIER_OUTPUTS = ("label", "probabilities")
NOT_ACCEPTED = "not accepted"  # input_schema["missing"] of a model that refuses NaN
REGRESSOR_OUTPUTS = ("variable",)
# Extreme values each library accepts at prediction time (XGBoost refuses inf; scikit-learn
# refuses inf and, for most estimators, NaN).
EXTREMES = {
    "xgboost": (np.nan, 1e30, -1e30, 3.0e38, 0.0),
    "lightgbm": (np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0),
    "sklearn": (1e30, -1e30, 0.0),
    "catboost": (np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0),
}
# Types a skops file may hold without --trust-pickle: the libraries' own classes.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.", "builtins.")


def import_extra(module: str, extra: str = "tabular") -> Any:
    """Import ``module``; a missing one is a UsageError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UsageError(
            f"{module} is not installed; install the {extra} extra: "
            f"pip install -c constraints.txt -e '.[{extra}]'"
        ) from e


def _thresholds_xgboost(booster: Any) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for tree in booster.get_dump(dump_format="json"):
        stack = [json.loads(tree)]
        while stack:
            node = stack.pop()
            if "split" in node:
                index = (
                    int(str(node["split"]).lstrip("f"))
                    if str(node["split"]).lstrip("f").isdigit()
                    else booster.feature_names.index(node["split"])
                )
                found.setdefault(index, []).append(float(node["split_condition"]))
                stack.extend(node.get("children", []))
    return found


def _thresholds_lightgbm(booster: Any) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node and isinstance(node.get("threshold"), (int, float)):
                found.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))
                stack.extend((node["left_child"], node["right_child"]))
    return found


def adversarial_rows(
    thresholds: Mapping[int, list[float]],
    features: int,
    rows: int,
    seed: int,
    extremes: tuple[float, ...],
) -> np.ndarray:
    """Rows whose values sit on split thresholds (and one float32 step away), or are extreme."""
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((rows, features)).astype(np.float32)
    for f in range(features):
        points = thresholds.get(f)
        if points:
            base = np.asarray(points, dtype=np.float32)
            candidates = np.concatenate(
                [
                    base,
                    np.nextafter(base, np.float32(np.inf)),
                    np.nextafter(base, np.float32(-np.inf)),
                ]
            )
            out[:, f] = rng.choice(candidates, size=rows)
    special = rng.random((rows, features)) < 0.08
    out[special] = rng.choice(np.asarray(extremes, dtype=np.float32), size=int(special.sum()))
    return out


def _schema(names: list[str], missing: str) -> dict[str, Any]:
    return {"input": INPUT, "dtype": "float32", "features": names, "missing": missing}


def tabular_model(
    path: Path,
    form: CheckpointForm,
    model: Any,
    *,
    framework: str,
    names: list[str],
    classifier: bool,
    thresholds: Mapping[int, list[float]],
    predict: Callable[[np.ndarray], np.ndarray],
    missing: str,
    options: LoadOptions,
    model_type: str,
    extremes: tuple[float, ...] | None = None,
) -> LoadedModel:
    """A tree or linear model that its library's ``predict`` runs on one float32 matrix."""
    features = len(names)
    extremes = EXTREMES[framework] if extremes is None else extremes
    if options.spec is not None:
        examples = options.spec.examples(options.seed)
        widths = {e[INPUT].shape[-1] for e in examples if INPUT in e}
        if options.spec.names != (INPUT,) or widths != {features}:
            raise UsageError(
                f"{path}: --input-spec must describe one input 'input' of "
                f"{features} features ({', '.join(names)})"
            )
    else:
        examples = (
            {INPUT: adversarial_rows(thresholds, features, 1, options.seed, extremes)},
            {INPUT: adversarial_rows(thresholds, features, 256, options.seed + 1, extremes)},
        )
    output_names = CLASSIFIER_OUTPUTS if classifier else REGRESSOR_OUTPUTS

    def run(feed: Inputs) -> Outputs:
        matrix = np.asarray(feed[INPUT], dtype=np.float32)
        raw = np.asarray(predict(matrix))
        if not classifier:
            return {"variable": raw.reshape(-1, 1).astype(np.float32)}
        probabilities = np.stack([1.0 - raw, raw], axis=1) if raw.ndim == 1 else raw
        probabilities = probabilities.astype(np.float32)
        return {"label": probabilities.argmax(1).astype(np.int64), "probabilities": probabilities}

    return LoadedModel(
        source=path,
        form=form,
        module=model,
        input_names=(INPUT,),
        output_names=output_names,
        dynamic_axes={INPUT: {0: "batch"}},
        examples=examples,
        run=run,
        model_type=model_type,
        hashed_files=(path,),
        framework=framework,
        input_schema=_schema(names, missing),
        notes=(f"input schema: {features} float32 features, missing values "
               + ("not accepted" if missing == NOT_ACCEPTED else f"as {missing}"),),
    )


@register_loader(CheckpointForm.XGBOOST)
def load_xgboost(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """An XGBoost booster saved as ``.json`` or ``.ubj``."""
    xgb = import_extra("xgboost")
    check_xgboost(path)
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as e:
        raise CheckpointError(f"{path}: not a loadable XGBoost model ({first_line(e)})") from e
    features = booster.num_features()
    names = list(booster.feature_names or [f"f{i}" for i in range(features)])
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    classifier = objective.startswith(("binary:", "multi:"))
    if objective.startswith("multi:softmax"):
        raise CheckpointError(
            f"{path}: objective multi:softmax returns labels only; "
            "retrain with multi:softprob to export probabilities"
        )

    def predict(matrix: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(matrix, feature_names=booster.feature_names))

    return tabular_model(
        path,
        form,
        booster,
        framework="xgboost",
        names=names,
        classifier=classifier,
        thresholds=_thresholds_xgboost(booster),
        predict=predict,
        missing="NaN",
        options=options,
        model_type=f"xgboost {objective}",
    )


@register_loader(CheckpointForm.LIGHTGBM)
def load_lightgbm(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """A LightGBM model text file (``Booster.save_model``)."""
    lgb = import_extra("lightgbm")
    check_lightgbm_text(path)
    try:
        booster = lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as e:
        raise CheckpointError(f"{path}: not a loadable LightGBM model ({first_line(e)})") from e
    objective = str(booster.dump_model().get("objective", ""))
    classifier = objective.startswith(("binary", "multiclass"))
    params = booster.dump_model().get("parameters", {}) or {}
    missing = "zero" if str(params.get("zero_as_missing", "false")).lower() == "true" else "NaN"
    return tabular_model(
        path,
        form,
        booster,
        framework="lightgbm",
        names=booster.feature_name(),
        classifier=classifier,
        thresholds=_thresholds_lightgbm(booster),
        predict=booster.predict,
        missing=missing,
        options=options,
        model_type=f"lightgbm {objective.split()[0] if objective else ''}".strip(),
    )


def sklearn_model(
    path: Path, form: CheckpointForm, model: Any, options: LoadOptions
) -> LoadedModel:
    """A fitted scikit-learn estimator or pipeline."""
    features = getattr(model, "n_features_in_", None)
    if features is None:
        raise CheckpointError(f"{path}: {type(model).__name__} is not fitted (no n_features_in_)")
    names = [
        str(n) for n in getattr(model, "feature_names_in_", [f"f{i}" for i in range(features)])
    ]
    classifier = hasattr(model, "predict_proba")
    thresholds: dict[int, list[float]] = {}
    for estimator in _tree_estimators(model):
        tree = estimator.tree_
        for f, t in zip(tree.feature, tree.threshold, strict=True):
            if f >= 0:
                thresholds.setdefault(int(f), []).append(float(t))
    predict = model.predict_proba if classifier else model.predict
    return tabular_model(
        path,
        form,
        model,
        framework="sklearn",
        names=names,
        classifier=classifier,
        thresholds=thresholds,
        predict=predict,
        missing="NaN" if accepts_nan(predict, len(names)) else NOT_ACCEPTED,
        options=options,
        model_type=f"sklearn {type(model).__name__}",
    )


def accepts_nan(predict: Callable[[np.ndarray], np.ndarray], features: int) -> bool:
    """Whether the model takes a row of NaN and answers with numbers.

    Most scikit-learn estimators (StandardScaler + LogisticRegression) raise on NaN, and
    their graph would return NaN: the schema then says missing values are not accepted.
    """
    try:
        out = np.asarray(predict(np.full((1, features), np.nan, np.float32)), np.float64)
    except ValueError:
        return False
    return bool(np.all(np.isfinite(out)))


def _tree_estimators(model: Any) -> list[Any]:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(final, "tree_"):
        return [final]
    found = []
    for estimator in np.ravel(getattr(final, "estimators_", [])):
        if hasattr(estimator, "tree_"):
            found.append(estimator)
    return found


@register_loader(CheckpointForm.SKOPS)
def load_skops(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """A scikit-learn model saved with skops; types outside skops' trusted set are refused."""
    sio = import_extra("skops.io")
    try:
        untrusted = sio.get_untrusted_types(file=str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable skops file ({first_line(e)})") from e
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if foreign and not options.trust_pickle:
        raise CheckpointError(
            f"{path}: the skops file holds types from outside scikit-learn "
            f"and its numeric libraries ({', '.join(foreign)}); re-run with "
            "--trust-pickle if you trust its author"
        )
    try:
        model = sio.load(str(path), trusted=untrusted or None)
    except Exception as e:
        raise CheckpointError(f"{path}: skops could not load it ({first_line(e)})") from e
    return sklearn_model(path, form, model, options)
