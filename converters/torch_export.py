"""Load a ``torch.export`` program (``.pt2``), which carries example inputs and dynamic dims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import CheckpointError, UsageError
from converters.archive import check_export_archive, weights_only_torch_load
from converters.registry import LoadOptions, register_loader
from converters.torch_module import make_runner, output_names_of, to_torch
from converters.types import CheckpointForm, Inputs, LoadedModel


def _symbolic_axes(program: Any, names: tuple[str, ...]) -> dict[str, dict[int, str]]:
    """Name the program's symbolic input dims: a shared symbol keeps one name across inputs."""
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    symbol_names: dict[str, str] = {}
    axes: dict[str, dict[int, str]] = {}
    for name in names:
        value = placeholders[name].meta.get("val")
        for axis, size in enumerate(getattr(value, "shape", ())):
            if isinstance(size, torch.SymInt):
                key = str(size)
                if key not in symbol_names:
                    symbol_names[key] = (
                        "batch"
                        if axis == 0 and "batch" not in symbol_names.values()
                        else f"dim_{len(symbol_names)}"
                    )
                axes.setdefault(name, {})[axis] = symbol_names[key]
    return axes


def _second_example(first: Inputs, axes: dict[str, dict[int, str]], seed: int) -> Inputs:
    """The stored example reshaped along its dynamic axes, values drawn from its own values."""
    rng = np.random.default_rng(seed)
    sizes: dict[str, int] = {}
    for name, by_axis in axes.items():
        for axis, axis_name in by_axis.items():
            current = first[name].shape[axis]
            sizes.setdefault(axis_name, 2 if current == 1 else max(2, current // 2))
    second = {}
    for name, value in first.items():
        shape = tuple(
            sizes.get(axes.get(name, {}).get(a, ""), s) for a, s in enumerate(value.shape)
        )
        if np.issubdtype(value.dtype, np.floating):
            second[name] = (
                rng.standard_normal(shape).astype(value.dtype) * value.std() + value.mean()
            )
        else:
            second[name] = rng.choice(value.reshape(-1), size=shape).astype(value.dtype)
    return second


@register_loader(CheckpointForm.TORCH_EXPORT)
def load_torch_export(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Load the program; example inputs from the file, or from ``--input-spec``."""
    import contextlib

    import torch

    check_export_archive(path, options.trust_pickle)
    guard = contextlib.nullcontext() if options.trust_pickle else weights_only_torch_load()
    try:
        with guard:
            program = torch.export.load(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: not a loadable torch.export program ({e})") from e
    names = tuple(
        spec.arg.name
        for spec in program.graph_signature.input_specs
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT
    )
    module = program.module()
    if options.spec is not None:
        spec = options.spec
        if spec.names != names:
            raise UsageError(
                f"{path}: --input-spec names {list(spec.names)}, the program takes {list(names)}"
            )
        examples: tuple[Inputs, ...] = spec.examples(options.seed)
        axes = spec.dynamic_axes
    else:
        stored = getattr(program, "example_inputs", None)
        if not stored or not stored[0] or stored[1]:
            raise UsageError(
                f"{path}: the program stores no positional example inputs; pass --input-spec"
            )
        first = {n: t.detach().numpy() for n, t in zip(names, stored[0], strict=True)}
        axes = _symbolic_axes(program, names)
        examples = (first, _second_example(first, axes, options.seed)) if axes else (first,)
    try:
        with torch.inference_mode():
            trial = module(*(to_torch(examples[-1])[n] for n in names))
    except Exception as e:
        raise CheckpointError(f"{path}: the program rejects its example inputs ({e})") from e
    output_names = output_names_of(trial, path)
    return LoadedModel(
        source=path,
        form=form,
        module=program,
        input_names=names,
        output_names=output_names,
        dynamic_axes=axes,
        examples=examples,
        run=make_runner(module, names, output_names, "args"),
        model_type="ExportedProgram",
        hashed_files=(path,),
    )
