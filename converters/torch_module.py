"""Run a torch module as the original model and adapt it to a positional, tuple-out form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from converters.types import Inputs, LoadedModel, Outputs

CallStyle = Literal["kwargs", "args"]


def to_torch(inputs: Inputs) -> dict[str, torch.Tensor]:
    """Turn numpy inputs into torch tensors without copying."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Detach ``tensor`` into numpy; bfloat16, which numpy lacks, becomes float32."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _flatten(value: Any, prefix: str, into: list[tuple[str, torch.Tensor]]) -> None:
    if isinstance(value, torch.Tensor):
        into.append((prefix, value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if item is not None:
                _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}_{i}" if prefix else f"output_{i}", into)
    elif value is not None:
        raise TypeError(f"model output of type {type(value).__name__} is not a tensor")


def flatten_outputs(value: Any) -> list[tuple[str, torch.Tensor]]:
    """Flatten a module's return value into named tensors.

    Rules: a tensor is ``output``; a tuple/list gives ``output_0``, ``output_1``…; a mapping
    (a dict or a transformers ModelOutput) gives its keys, skipping ``None`` values.
    """
    if isinstance(value, torch.Tensor):
        return [("output", value)]
    flat: list[tuple[str, torch.Tensor]] = []
    _flatten(value, "", flat)
    return flat


def output_names_of(value: Any, source: object) -> tuple[str, ...]:
    """The names of a trial call's outputs; CheckpointError when it returns no tensors."""
    from convert_model.core.errors import CheckpointError

    try:
        names = tuple(name for name, _ in flatten_outputs(value))
    except TypeError as e:
        raise CheckpointError(f"{source}: the model's forward returns no tensors: {e}") from e
    if not names:
        raise CheckpointError(f"{source}: the model's forward returns no tensors")
    return names


def call(
    module: Any, inputs: Mapping[str, torch.Tensor], order: Sequence[str], style: CallStyle
) -> Any:
    """Call ``module`` with ``inputs`` by keyword or positionally in ``order``."""
    if style == "kwargs":
        return module(**inputs)
    return module(*(inputs[name] for name in order))


def make_runner(
    module: Any, input_names: Sequence[str], output_names: Sequence[str], style: CallStyle
):
    """Return a function running ``module`` on numpy inputs, giving numpy outputs by name."""

    def run(inputs: Inputs) -> Outputs:
        with torch.inference_mode():
            out = call(module, to_torch(inputs), input_names, style)
        flat = dict(flatten_outputs(out))
        missing = [n for n in output_names if n not in flat]
        if missing:
            raise RuntimeError(f"the model returned no {missing}; it returned {list(flat)}")
        return {name: to_numpy(flat[name]) for name in output_names}

    return run


class PositionalAdapter(torch.nn.Module):
    """Present ``module`` as ``forward(*inputs) -> tuple(outputs)`` in fixed name orders.

    Exporters name graph inputs and outputs by position; this fixes both orders and drops
    outputs that are not in ``output_names`` (for example a pooler output the task ignores).
    """

    def __init__(
        self, module: Any, input_names: Sequence[str], output_names: Sequence[str], style: CallStyle
    ) -> None:
        super().__init__()
        self.inner = module
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.style = style

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Call the wrapped module by name and return the selected outputs in order."""
        out = call(
            self.inner, dict(zip(self.input_names, args, strict=True)), self.input_names, self.style
        )
        flat = dict(flatten_outputs(out))
        return tuple(flat[name] for name in self.output_names)


def largest_example(loaded: LoadedModel) -> Inputs:
    """The example with the most elements: tracing at size 1 would pin a dynamic axis to 1."""
    return max(loaded.examples, key=lambda ex: sum(int(np.prod(v.shape)) for v in ex.values()))


def adapter(loaded: LoadedModel) -> PositionalAdapter:
    """The module as ``forward(*inputs) -> tuple(outputs)`` in the loaded names' order."""
    style: CallStyle = "kwargs" if loaded.hf_model is not None else "args"
    return PositionalAdapter(loaded.module, loaded.input_names, loaded.output_names, style)
