"""One registry of checkpoint loaders, keyed by form; registering a form twice is an error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError, UsageError
from convert_model.core.limits import check_seconds
from converters.input_spec import InputSpec, parse_input_spec
from converters.types import CheckpointForm, LoadedModel


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """What a loader may need besides the path; each loader reads only its own fields."""

    task: str | None = None
    input_spec: str | None = None  # --input-spec's text; ``spec`` is its parsed form
    model_class: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False
    trust_pickle: bool = False
    notebook_object: str | None = None
    notebook_inputs: str | None = None
    notebook_timeout: float = 300.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.model_kwargs, Mapping):
            raise UsageError(f"--model-kwargs must be a JSON object, got {self.model_kwargs!r}")
        check_seconds(self.notebook_timeout, "--notebook-timeout")
        parsed = parse_input_spec(self.input_spec) if self.input_spec else None
        object.__setattr__(self, "_spec", parsed)

    @property
    def spec(self) -> InputSpec | None:
        """``input_spec`` parsed (validated on construction)."""
        return self._spec  # type: ignore[no-any-return, attr-defined]


Loader = Callable[[Path, CheckpointForm, LoadOptions], LoadedModel]
_LOADERS: dict[CheckpointForm, Loader] = {}


def register_loader(*forms: CheckpointForm) -> Callable[[Loader], Loader]:
    """Register ``fn`` as the loader of ``forms``; a form registered twice raises."""

    def decorate(fn: Loader) -> Loader:
        for form in forms:
            if form in _LOADERS:
                raise ValueError(
                    f"a loader for {form} is already registered ({_LOADERS[form].__qualname__})"
                )
            _LOADERS[form] = fn
        return fn

    return decorate


def loader_for(form: CheckpointForm) -> Loader:
    """Return the loader registered for ``form``."""
    _import_loaders()
    if form not in _LOADERS:
        supported = ", ".join(sorted(str(f) for f in _LOADERS))
        raise CheckpointError(
            f"checkpoints of form {form} are not supported yet; supported: {supported}"
        )
    return _LOADERS[form]


def _import_loaders() -> None:
    """Import the loader modules so their decorators run (they import torch, hence lazily)."""
    from converters import (  # noqa: F401
        catboost_model,
        fasttext_model,
        hf_folder,
        keras_model,
        notebook,
        onnx_file,
        sentence_transformers,
        state_dict,
        tabular,
        torch_export,
        torchscript,
    )
