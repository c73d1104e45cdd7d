"""Load a state_dict (``.safetensors``, ``.pt``, ``.pth``, ``.bin``) into a user-named class.

``.pt`` files are read with ``torch.load(weights_only=True)``: a file that needs full
unpickling (a whole pickled module) is refused unless the user passes ``--trust-pickle``.
Whole pickles (``.pkl``) are loaded here too, under the same flag.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError, UsageError, first_line
from converters.python_class import class_file, construct, import_class
from converters.registry import LoadOptions, register_loader
from converters.torch_module import make_runner, output_names_of, to_torch
from converters.types import CheckpointForm, LoadedModel

_NESTED_KEYS = ("state_dict", "model_state_dict", "model")
_UNSUPPORTED: tuple[tuple[str, Any], ...] = (
    ("meta-device (no data)", lambda t: t.is_meta),
    ("sparse", lambda t: str(t.layout) != "torch.strided"),
    ("complex", lambda t: t.is_complex()),
    ("quantized", lambda t: t.is_quantized),
)
_PICKLE_REFUSAL = (
    "needs full unpickling, which can run arbitrary code hidden in the file; "
    "re-run with --trust-pickle only if you trust its author"
)


def read_tensors(path: Path, trust_pickle: bool) -> Any:
    """Read the file's tensors (or, with ``trust_pickle``, any pickled object)."""
    import torch

    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(
                f"{path}: not a valid safetensors file, truncated or corrupt ({e})"
            ) from e
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise CheckpointError(f"{path}: {_PICKLE_REFUSAL}") from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: cannot read it as a torch.save file ({first_line(e)})"
        ) from e
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: unpickling failed ({first_line(e)})") from e


def _as_state_dict(obj: Any, path: Path) -> Mapping[str, Any]:
    import torch

    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        keys = [k for k in obj if not isinstance(k, str)]
        if keys:
            raise CheckpointError(
                f"{path}: not a state_dict: keys {keys[:5]} are not strings (parameter names)"
            )
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{path}: not a state_dict: entries {bad[:5]} are not tensors")
        for kind, test in _UNSUPPORTED:
            found = [k for k, v in obj.items() if test(v)]
            if found:
                raise CheckpointError(
                    f"{path}: state_dict entries {found[:5]} are {kind} tensors; expected dense "
                    "real tensors with data"
                )
        return obj
    raise CheckpointError(
        f"{path}: expected a state_dict (name → tensor), got {type(obj).__name__}"
    )


def _load_into(module: Any, state: Mapping[str, Any], path: Path) -> None:
    """Load ``state`` strictly, listing every missing, unexpected and wrongly-shaped key."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} (model wants {tuple(expected[k].shape)})"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    typed = sorted(
        f"{k} of {state[k].dtype} (model wants {expected[k].dtype})"
        for k in set(expected) & set(state)
        if state[k].dtype.is_floating_point != expected[k].dtype.is_floating_point
    )
    problems = [
        f"{label}: {', '.join(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrongly-shaped keys", wrong),
            ("wrongly-typed keys", typed),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"{path}: state_dict does not fit {type(module).__name__}: " + "; ".join(problems)
        )
    module.load_state_dict(state, strict=True)


def _check_arity(module: Any, names: tuple[str, ...], path: Path) -> None:
    """UsageError when --input-spec names more inputs than forward takes positionally."""
    import inspect

    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError, AttributeError):  # TorchScript and C++ modules: no signature
        return
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY,
                                                            p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in parameters if p.default is p.empty and p.kind in (
        p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not len(required) <= len(names) <= len(positional):
        raise UsageError(
            f"{path}: --input-spec names {len(names)} inputs ({', '.join(names)}); "
            f"{type(module).__name__}.forward takes ({', '.join(positional)})"
        )


def _require_input_spec(options: LoadOptions, path: Path) -> Any:
    if options.spec is None:
        raise UsageError(
            f"{path}: a plain module needs --input-spec, e.g. 'x:float32[batch,16]=1x16'"
        )
    return options.spec


def module_model(
    module: Any,
    path: Path,
    form: CheckpointForm,
    options: LoadOptions,
    hashed: tuple[Path, ...],
    notes: tuple[str, ...] = (),
) -> LoadedModel:
    """Describe an ``nn.Module`` (or TorchScript module) called positionally per --input-spec."""
    import torch

    spec = _require_input_spec(options, path)
    module.eval()
    _check_arity(module, spec.names, path)
    examples = spec.examples(options.seed)
    try:
        with torch.inference_mode():
            trial = module(*(to_torch(examples[0])[n] for n in spec.names))
    except Exception as e:
        raise CheckpointError(
            f"{path}: the model rejects inputs shaped by --input-spec "
            f"({', '.join(f'{k}{tuple(v.shape)}' for k, v in examples[0].items())}): "
            f"{type(e).__name__}: {first_line(e)}"
        ) from e
    output_names = output_names_of(trial, path)
    return LoadedModel(
        source=path,
        form=form,
        module=module,
        input_names=spec.names,
        output_names=output_names,
        dynamic_axes=spec.dynamic_axes,
        examples=examples,
        run=make_runner(module, spec.names, output_names, "args"),
        model_type=type(module).__name__,
        hashed_files=hashed,
        notes=notes,
    )


@register_loader(CheckpointForm.STATE_DICT)
def load_state_dict(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Build the user's class and load the weights into it."""
    import torch

    obj = read_tensors(path, options.trust_pickle)
    if isinstance(obj, torch.nn.Module):  # only reachable with --trust-pickle
        return module_model(obj, path, CheckpointForm.PICKLE, options, (path,))
    if not options.model_class:
        raise UsageError(
            f"{path}: a state_dict needs the class that defines the model: "
            "--model-class path/to/file.py:Class (or package.module:Class)"
        )
    state = _as_state_dict(obj, path)
    module = construct(import_class(options.model_class), dict(options.model_kwargs))
    if not isinstance(module, torch.nn.Module):
        raise CheckpointError(f"--model-class {options.model_class}: not a torch.nn.Module")
    _load_into(module, state, path)
    source = class_file(options.model_class)  # the class's code is part of the source
    return module_model(
        module, path, form, options, (path, *([source] if source else [])),
        (f"model class {options.model_class}",),
    )


@register_loader(CheckpointForm.PICKLE)
def load_pickle(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Load a whole pickled module, only with ``--trust-pickle``."""
    import torch

    if not options.trust_pickle:
        raise CheckpointError(f"{path}: a pickle {_PICKLE_REFUSAL}")
    try:
        if path.suffix.lower() in (".pkl", ".pickle", ".joblib"):
            import joblib

            obj = joblib.load(path)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: unpickling failed ({first_line(e)})") from e
    if hasattr(obj, "n_features_in_") and not isinstance(obj, torch.nn.Module):
        from converters.tabular import sklearn_model

        return sklearn_model(path, form, obj, options)
    if not isinstance(obj, torch.nn.Module):
        raise CheckpointError(
            f"{path}: the pickle holds a {type(obj).__name__}, not a torch module"
        )
    return module_model(obj, path, form, options, (path,))
