"""Export strategy for tree ensembles and scikit-learn models: onnxmltools and skl2onnx.

Rules:
- The graph takes ``input``: float32 [batch, features]; classifiers output ``label`` and
  ``probabilities`` (no ZipMap), regressors ``variable``.
- LightGBM compares float64 features with float64 thresholds; the graph compares float32.
  For float32 inputs ``x <= t`` equals ``x <= t'`` where ``t'`` is the largest float32 not
  above ``t``, so thresholds are rounded down to float32 before conversion: labels then
  agree exactly on every float32 input, thresholds included. XGBoost and scikit-learn trees
  already split on float32 values.
- LightGBM's predict reads a feature whose magnitude is at most ``kZeroThreshold`` (1e-35)
  as zero (it is dropped as a sparse zero), and its zero splits sit at +-1e-35: so the
  graph snaps those values to zero before the trees (``Abs``, ``Less`` than the next
  float32, ``Where``: opset 9, which onnxmltools emits; NaN passes through), or a row at
  -1e-35 takes the other branch.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from converters.export_strategy import ExportConfig, ExportStrategy
from converters.types import LoadedModel

TABULAR = ("xgboost", "lightgbm", "sklearn", "catboost", "fasttext")
"""Models the original library's own predict runs (trees, linear models, fastText): judged
to float32 rounding (max abs diff 1e-5, every differing row listed), fp32 only."""
_ONNXMLTOOLS = ("xgboost", "lightgbm", "sklearn")
TREE_OPSET = 15  # the newest default-domain opset onnxmltools' tree converters emit
LIGHTGBM_ZERO = np.float32(1e-35)  # kZeroThreshold in LightGBM's meta.h (a float literal)


def _applies(loaded: LoadedModel) -> str | None:
    if loaded.framework not in _ONNXMLTOOLS:
        return "not an XGBoost, LightGBM or scikit-learn model"
    return None


def floor_to_float32(value: float) -> float:
    """The largest float32 that is not above ``value``."""
    single = np.float32(value)
    if float(single) > value:
        single = np.nextafter(single, np.float32(-np.inf))
    return float(single)


def _floor_thresholds(tree: dict[str, Any]) -> None:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node.get("threshold"), float) and node.get("decision_type") == "<=":
            node["threshold"] = floor_to_float32(node["threshold"])
        stack.extend(node[k] for k in ("left_child", "right_child") if k in node)


class _Float32Booster:
    """A LightGBM Booster whose dump has float32-exact thresholds; the rest is forwarded.

    ``is_mock`` makes onnxmltools read the trees from ``dump_model`` instead of the C API.
    """

    is_mock = True

    def __init__(self, booster: Any) -> None:
        self._booster = booster
        self._dump = copy.deepcopy(booster.dump_model())
        for tree in self._dump["tree_info"]:
            _floor_thresholds(tree["tree_structure"])

    def dump_model(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._dump

    def __getattr__(self, name: str) -> Any:
        return getattr(self._booster, name)


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> None:
    import onnx

    features = len((loaded.input_schema or {})["features"])
    if loaded.framework == "sklearn":
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType as SkFloat

        model = to_onnx(
            loaded.module,
            initial_types=[("input", SkFloat([None, features]))],
            options={"zipmap": False},
            target_opset={"": TREE_OPSET, "ai.onnx.ml": 3},
        )
        rename_outputs(model, loaded.output_names)
    else:
        from onnxmltools import convert_lightgbm, convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, features]))]
        if loaded.framework == "xgboost":
            # onnxmltools reads features by position ("f3"); names live in the input schema.
            booster = loaded.module.copy()
            booster.feature_names = None
            model = convert_xgboost(booster, initial_types=types, target_opset=TREE_OPSET)
        else:
            from onnxmltools.convert.lightgbm._parse import WrappedBooster

            model = convert_lightgbm(
                WrappedBooster(_Float32Booster(loaded.module)),
                initial_types=types,
                target_opset=TREE_OPSET,
                zipmap=False,
            )
            snap_lightgbm_zeros(model)
        rename_outputs(model, loaded.output_names)
    onnx.save_model(model, str(path))


def snap_lightgbm_zeros(model: Any) -> None:
    """Make the graph read ``|x| <= 1e-35`` as 0, as LightGBM's predict does (in place)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    source = graph.input[0].name
    snapped = f"{source}/lightgbm_zero_snapped"
    for node in graph.node:
        node.input[:] = [snapped if i == source else i for i in node.input]
    names = [f"{source}/lightgbm_{n}" for n in ("abs", "is_zero", "limit", "zero")]
    above = np.nextafter(LIGHTGBM_ZERO, np.float32(np.inf))  # |x| < above: |x| <= 1e-35
    graph.initializer.extend([
        numpy_helper.from_array(np.asarray(above, np.float32), names[2]),
        numpy_helper.from_array(np.asarray(0.0, np.float32), names[3]),
    ])
    snap = [
        helper.make_node("Abs", [source], [names[0]], name="lightgbm_zero_abs"),
        helper.make_node("Less", [names[0], names[2]], [names[1]], name="lightgbm_zero_test"),
        helper.make_node("Where", [names[1], names[3], source], [snapped],
                         name="lightgbm_zero_snap"),
    ]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(snap + nodes)


def rename_outputs(model: Any, names: tuple[str, ...]) -> None:
    """Give the graph outputs the loaded model's names, in order."""
    if len(model.graph.output) != len(names):
        raise ValueError(
            f"converter produced {len(model.graph.output)} outputs, expected {list(names)}"
        )
    for output, name in zip(model.graph.output, names, strict=True):
        old = output.name
        if old == name:
            continue
        for node in model.graph.node:
            node.output[:] = [name if o == old else o for o in node.output]
            node.input[:] = [name if i == old else i for i in node.input]
        output.name = name


ONNXMLTOOLS = ExportStrategy(name="onnxmltools", applies=_applies, export=_export)
