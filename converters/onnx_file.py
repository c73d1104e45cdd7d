"""Take an existing ``.onnx`` file as the fp32 graph: check it, then optimise and check only."""

from __future__ import annotations

from pathlib import Path

from convert_model.core.errors import CheckpointError, UsageError
from converters import onnx_graph
from converters.input_spec import from_tensor_specs
from converters.registry import LoadOptions, register_loader
from converters.types import CheckpointForm, Inputs, LoadedModel, Outputs


@register_loader(CheckpointForm.ONNX)
def load_onnx(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Check the graph; the original that parity compares against is the graph itself."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
        inputs, outputs = onnx_graph.signature(path)
        sess = onnx_graph.session(path)
    except Exception as e:
        raise CheckpointError(
            f"{path}: not a valid ONNX model ({str(e).strip().splitlines()[0]})"
        ) from e
    spec = options.spec or from_tensor_specs(inputs)
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
