"""Export strategy 3: the TorchScript-based ``torch.onnx.export(dynamo=False)``."""

from __future__ import annotations

import warnings
from pathlib import Path

from converters.export_strategy import ExportConfig, ExportStrategy
from converters.torch_module import adapter, largest_example, to_torch
from converters.types import LoadedModel


def _applies(loaded: LoadedModel) -> str | None:
    return None if loaded.framework == "torch" else f"not a torch model ({loaded.framework})"


def _axes(loaded: LoadedModel) -> dict[str, dict[int, str]]:
    """Input axes as loaded; outputs share the batch axis when every input leads with it."""
    axes = {n: dict(a) for n, a in loaded.dynamic_axes.items() if a}
    leading = {loaded.dynamic_axes.get(n, {}).get(0) for n in loaded.input_names}
    if len(leading) == 1 and None not in leading:
        batch = str(leading.pop())
        axes.update({n: {0: batch} for n in loaded.output_names})
    return axes


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> tuple[str, ...]:
    """Trace and export; return the tracer's warnings as ``file:line: message``.

    Those (``.item()``, data-dependent control flow) are what makes a traced graph
    disagree with the module.
    """
    import torch

    module = loaded.module
    if isinstance(module, torch.export.ExportedProgram):
        module = module.module()
    elif not isinstance(module, torch.jit.ScriptModule):
        module = adapter(loaded)
    example = to_torch(largest_example(loaded))
    axes = _axes(loaded) if config.dynamic else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            tuple(example[n] for n in loaded.input_names),
            str(path),
            dynamo=False,
            opset_version=config.opset,
            input_names=list(loaded.input_names),
            output_names=list(loaded.output_names),
            dynamic_axes=axes or None,
        )
    return tracer_warnings(caught)


def tracer_warnings(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    """TracerWarnings as ``file:line: first line``, each once, in the order they came."""
    import torch

    found: dict[str, None] = {}
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            message = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
            found[f"{w.filename}:{w.lineno}: {message}"] = None
    return tuple(found)


TORCHSCRIPT = ExportStrategy(name="torchscript", applies=_applies, export=_export)
