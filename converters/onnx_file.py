"""Take an existing ``.onnx`` file as the fp32 graph: check it, then optimise and check only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError, UsageError, summary
from converters import onnx_graph
from converters.input_spec import from_tensor_specs
from converters.registry import LoadOptions, register_loader
from converters.types import CheckpointForm, Inputs, LoadedModel, Outputs


def _check_values(path: Path, model: Any) -> None:
    """Graph inputs and outputs must be numeric tensors, and there must be an output."""
    from onnx import TensorProto

    if not model.graph.output:
        raise CheckpointError(f"{path}: the graph has no outputs")
    initializers = {i.name for i in model.graph.initializer}
    for role, values in (("input", model.graph.input), ("output", model.graph.output)):
        for v in values:
            if v.name in initializers:
                continue
            kind = v.type.WhichOneof("value")
            if kind != "tensor_type":
                raise CheckpointError(
                    f"{path}: graph {role} {v.name!r} is a {kind or 'value of no type'}, "
                    "not a tensor; only tensor inputs and outputs are supported"
                )
            if v.type.tensor_type.elem_type in (TensorProto.STRING, TensorProto.UNDEFINED):
                what = "string" if v.type.tensor_type.elem_type == TensorProto.STRING else "untyped"
                raise CheckpointError(
                    f"{path}: graph {role} {v.name!r} is a {what} tensor; only numeric and "
                    "bool tensors are supported"
                )


@register_loader(CheckpointForm.ONNX)
def load_onnx(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Check the graph; the original that parity compares against is the graph itself."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
        _check_values(path, onnx.load(str(path), load_external_data=False))
        inputs, outputs = onnx_graph.signature(path)
        sess = onnx_graph.session(path)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: not a valid ONNX model ({summary(e)})") from e
    spec = options.spec or from_tensor_specs(inputs, f"{path}: the graph's fixed dims")
    names = tuple(i.name for i in inputs)
    if set(spec.names) != set(names):
        raise UsageError(
            f"{path}: --input-spec names {list(spec.names)}, the graph takes {list(names)}"
        )

    def run(feed: Inputs) -> Outputs:
        return onnx_graph.run(sess, feed)

    return LoadedModel(
        source=path,
        form=form,
        module=None,
        input_names=names,
        output_names=tuple(o.name for o in outputs),
        dynamic_axes=spec.dynamic_axes,
        examples=spec.examples(options.seed),
        run=run,
        model_type="onnx",
        framework="onnx",
        hashed_files=(path,),
        notes=("the source is an ONNX graph: parity is measured against the source graph",),
    )
