"""Load a TorchScript archive with ``torch.jit.load`` (no pickled Python code runs)."""

from __future__ import annotations

from pathlib import Path

from convert_model.core.errors import CheckpointError
from converters.registry import LoadOptions, register_loader
from converters.state_dict import module_model
from converters.types import CheckpointForm, LoadedModel


@register_loader(CheckpointForm.TORCHSCRIPT)
def load_torchscript(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Load the scripted or traced module; its inputs come from ``--input-spec``."""
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise CheckpointError(f"{path}: not a loadable TorchScript archive ({e})") from e
    return module_model(module, path, form, options, (path,))
