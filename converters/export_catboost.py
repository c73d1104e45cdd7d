"""Export strategy for CatBoost models: CatBoost's own ONNX export.

Rules:
- ``save_model(format="onnx")`` writes a ``TreeEnsembleClassifier``/``Regressor`` graph
  that takes ``features``; it is renamed ``input``, like the other tree forms.
- A classifier's ``ZipMap`` (a sequence of maps) is removed: ``probabilities`` is the
  float32 [batch, classes] tensor before it, ``label`` the int64 class index.
- A regressor's ``predictions`` is renamed ``variable``.
"""

from __future__ import annotations

from pathlib import Path

from converters.export_strategy import ExportConfig, ExportStrategy
from converters.export_tabular import TREE_OPSET, rename_outputs
from converters.types import LoadedModel

_CATBOOST_INPUT = "features"


def _applies(loaded: LoadedModel) -> str | None:
    return None if loaded.framework == "catboost" else "not a CatBoost model"


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> None:
    import onnx

    loaded.module.save_model(str(path), format="onnx")
    model = onnx.load(str(path))
    graph = model.graph
    for zipmap in [n for n in graph.node if n.op_type == "ZipMap"]:
        tensor = zipmap.input[0]
        graph.node.remove(zipmap)
        batch = graph.input[0].type.tensor_type.shape.dim[0].dim_param or "N"
        for output in graph.output:
            if output.name == zipmap.output[0]:
                output.CopyFrom(
                    onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT,
                                                       [batch, None])
                )
    rename_outputs(model, loaded.output_names)
    for node in graph.node:
        node.input[:] = ["input" if i == _CATBOOST_INPUT else i for i in node.input]
    graph.input[0].name = "input"
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        # CatBoost declares only ai.onnx.ml; passes and the manifest need the default domain.
        model.opset_import.append(onnx.helper.make_opsetid("", TREE_OPSET))
        model.ir_version = max(model.ir_version, 8)
    onnx.save_model(model, str(path))


CATBOOST = ExportStrategy(name="catboost", applies=_applies, export=_export)
