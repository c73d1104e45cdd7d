"""Export strategy 2: ``torch.onnx.export(dynamo=True)``, through torch.export."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from converters.export_strategy import ExportConfig, ExportStrategy
from converters.torch_module import adapter, largest_example, to_torch
from converters.types import LoadedModel


def _applies(loaded: LoadedModel) -> str | None:
    import torch

    if loaded.framework != "torch":
        return f"not a torch model ({loaded.framework})"
    if isinstance(loaded.module, torch.jit.ScriptModule):
        return "torch.export cannot trace a TorchScript module"
    return None


def _dynamic_shapes(loaded: LoadedModel) -> tuple[tuple[dict[int, object], ...]] | None:
    """One ``torch.export.Dim`` per axis name, shared by every input that names it.

    The adapter takes ``*inputs``: one parameter, so the spec is a 1-tuple of per-input dicts.
    """
    import torch

    dims: dict[str, object] = {}
    shapes = tuple(
        {
            axis: dims.setdefault(name, torch.export.Dim(_identifier(name)))
            for axis, name in loaded.dynamic_axes.get(input_name, {}).items()
        }
        for input_name in loaded.input_names
    )
    return (shapes,) if dims else None


def _identifier(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name) or "dim"


def _export(loaded: LoadedModel, path: Path, config: ExportConfig) -> None:
    import torch

    if isinstance(loaded.module, torch.export.ExportedProgram):
        program = torch.onnx.export(
            loaded.module,
            (),
            dynamo=True,
            opset_version=config.opset,
            input_names=list(loaded.input_names),
            output_names=list(loaded.output_names),
        )
    else:
        example = to_torch(largest_example(loaded))
        args = tuple(example[n] for n in loaded.input_names)
        # torch.export prints the partial FX graph of a failed capture to stderr; the
        # exception says what failed, and the manifest keeps its first meaningful line.
        with contextlib.redirect_stderr(io.StringIO()):
            program = torch.onnx.export(
                adapter(loaded),
                args,
                dynamo=True,
                opset_version=config.opset,
                input_names=list(loaded.input_names),
                output_names=list(loaded.output_names),
                dynamic_shapes=_dynamic_shapes(loaded) if config.dynamic else None,
            )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=True)  # folded back when small


DYNAMO = ExportStrategy(name="dynamo", applies=_applies, export=_export)
