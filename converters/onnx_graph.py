"""Read an ONNX graph's signature, check it, and open onnxruntime sessions on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.threads import usable_threads
from converters.types import Inputs, Outputs, TensorSpec


def _dims(value_info: Any) -> tuple[int | str, ...]:
    dims: list[int | str] = []
    for axis, dim in enumerate(value_info.type.tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or f"{value_info.name}_dim{axis}")
    return tuple(dims)


def signature(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs (initializers excluded) and outputs, without loading weights."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def spec(v: Any) -> TensorSpec:
        return TensorSpec(
            name=v.name,
            dtype=str(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)),
            dims=_dims(v),
        )

    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    return inputs, tuple(spec(v) for v in model.graph.output)


def opset_of(path: Path) -> int:
    """The default-domain opset the graph imports."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


QUIET_LOG_LEVEL = 4  # onnxruntime's own log lines never reach the console


def session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session with a fixed intra-op thread count."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_threads()
    options.inter_op_num_threads = 1
    # FATAL only: at ERROR (3) a failing run still prints its own coloured line to stderr;
    # the exception carries the same message to whoever handles it.
    options.log_severity_level = QUIET_LOG_LEVEL
    # Idle worker threads would otherwise spin for a while after each run, taking the cores
    # from whatever runs next: PyTorch in an interleaved latency run, or the next request.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess: Any, inputs: Inputs) -> Outputs:
    """Run ``sess`` on inputs by name; outputs come back by name."""
    expected = [i.name for i in sess.get_inputs()]
    missing = sorted(set(expected) - set(inputs))
    if missing:
        raise ValueError(f"inputs {missing} missing; the graph takes {expected}")
    feed: Mapping[str, np.ndarray] = {name: inputs[name] for name in expected}
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(feed)), strict=True))


def runner(path: Path, threads: int | None = None) -> Callable[[Inputs], Outputs]:
    """An onnxruntime session on ``path`` as a function from inputs to outputs, by name."""
    sess = session(path, threads)
    return lambda feed: run(sess, feed)
