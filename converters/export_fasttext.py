"""Export strategy for supervised fastText models: a graph built with ``onnx.helper``.

Rules (each follows fastText's own arithmetic, so float32 results agree to the last bit
where fastText's depend on it):
- ``ids`` (int64 [batch, ids], -1 = padding) gathers rows of the input matrix, with a row of
  zeros appended at the end for -1;
- the rows are summed in order (``CumSum`` along the ids, last element: fastText adds rows
  one after the other) and multiplied by float32(1 / count), as ``Model::computeHidden``;
- each label's score is the in-order sum of the products with its output row (``CumSum``
  again, as ``DenseMatrix::dotRow``): the one-vs-all sigmoid is a 512-step table, so a
  score one float step away could select another step;
- softmax loss: ``Softmax``; one-vs-all and negative sampling: fastText's sigmoid table
  (0 below -8, 1 above 8);
- ``probabilities`` adds 1e-5 as ``predict`` does (it reports exp(log(p + 1e-5))).
The tokeniser's data (``fasttext_tokenizer.json``) and the numpy runtime (``runtime/``)
are written beside the graph: serving needs no fasttext.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.runtime.fasttext_text import TOKENIZER_FILE
from converters.export_strategy import ExportConfig, ExportStrategy
from converters.types import LoadedModel

MAX_SIGMOID = 8
SIGMOID_TABLE_SIZE = 512
_PROBABILITY_FLOOR = 1e-5  # fastText's std_log: log(p + 1e-5)


def _applies(loaded: LoadedModel) -> str | None:
    return None if loaded.framework == "fasttext" else "not a fastText model"


def sigmoid_table() -> np.ndarray:
    """The sigmoid table fastText predicts with (``t_sigmoid_``): 513 float32 values."""
    steps = np.arange(SIGMOID_TABLE_SIZE + 1, dtype=np.float32)
    x = steps * np.float32(2 * MAX_SIGMOID) / np.float32(SIGMOID_TABLE_SIZE) - np.float32(
        MAX_SIGMOID
    )
    return (1.0 / (1.0 + np.exp(-x).astype(np.float64))).astype(np.float32)


def build_graph(input_matrix: np.ndarray, output_matrix: np.ndarray, activation: str,
                opset: int) -> Any:
    """The ONNX model: ``ids`` in, ``probabilities`` [batch, labels] out."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: Any, dtype: Any = None) -> Any:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    rows = np.concatenate([input_matrix, np.zeros((1, input_matrix.shape[1]))]).astype(
        np.float32
    )
    initializers = [
        const("input_matrix", rows),
        const("output_matrix", output_matrix.astype(np.float32)),
        const("last", -1, np.int64),
        const("zero", 0, np.int64),
        const("axis_ids", 1, np.int64),
        const("axis_dim", 2, np.int64),
        const("one_axis", [1], np.int64),
        const("floor", _PROBABILITY_FLOOR, np.float32),
    ]
    nodes = [
        helper.make_node("Gather", ["input_matrix", "ids"], ["rows"], axis=0),
        helper.make_node("CumSum", ["rows", "axis_ids"], ["row_sums"]),
        helper.make_node("Gather", ["row_sums", "last"], ["row_sum"], axis=1),
        helper.make_node("GreaterOrEqual", ["ids", "zero"], ["is_id"]),
        helper.make_node("Cast", ["is_id"], ["is_id_count"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["is_id_count", "one_axis"], ["count"], keepdims=1),
        helper.make_node("Reciprocal", ["count"], ["inverse64"]),
        helper.make_node("Cast", ["inverse64"], ["inverse"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["row_sum", "inverse"], ["hidden"]),
        helper.make_node("Unsqueeze", ["hidden", "one_axis"], ["hidden_3d"]),
        helper.make_node("Mul", ["hidden_3d", "output_matrix"], ["products"]),
        helper.make_node("CumSum", ["products", "axis_dim"], ["product_sums"]),
        helper.make_node("Gather", ["product_sums", "last"], ["scores"], axis=2),
    ]
    if activation == "softmax":
        nodes.append(helper.make_node("Softmax", ["scores"], ["p"], axis=-1))
    else:
        initializers += [
            const("sigmoid_table", sigmoid_table()),
            const("low", -MAX_SIGMOID, np.float32),
            const("high", MAX_SIGMOID, np.float32),
            const("steps_per_unit", SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2, np.float32),
            const("p_zero", 0.0, np.float32),
            const("p_one", 1.0, np.float32),
        ]
        nodes += [
            helper.make_node("Clip", ["scores", "low", "high"], ["clipped"]),
            helper.make_node("Add", ["clipped", "high"], ["shifted"]),
            helper.make_node("Mul", ["shifted", "steps_per_unit"], ["position"]),
            helper.make_node("Cast", ["position"], ["step"], to=TensorProto.INT64),
            helper.make_node("Gather", ["sigmoid_table", "step"], ["looked_up"], axis=0),
            helper.make_node("Less", ["scores", "low"], ["below"]),
            helper.make_node("Greater", ["scores", "high"], ["above"]),
            helper.make_node("Where", ["above", "p_one", "looked_up"], ["upper"]),
            helper.make_node("Where", ["below", "p_zero", "upper"], ["p"]),
        ]
    nodes.append(helper.make_node("Add", ["p", "floor"], ["probabilities"]))
    graph = helper.make_graph(
        nodes,
        "fasttext",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "ids"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                       ["batch", output_matrix.shape[0]])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="convert-model")


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> None:
    import onnx

    from converters.fasttext_model import text_settings

    model = loaded.module
    schema = loaded.input_schema or {}
    graph = build_graph(np.asarray(model.get_input_matrix()),
                        np.asarray(model.get_output_matrix()), schema["activation"],
                        config.opset)
    onnx.save_model(graph, str(path))
    settings = text_settings(model)
    (path.parent / TOKENIZER_FILE).write_text(
        json.dumps(settings.to_json(), ensure_ascii=False) + "\n", encoding="utf-8"
    )


FASTTEXT = ExportStrategy(name="fasttext", applies=_applies, export=_export)
