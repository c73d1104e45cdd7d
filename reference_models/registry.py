"""The registry of reference models: what each one is, and the function that builds it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import MappingProxyType

from benchmarks.metrics import check_metric

Progress = Callable[[str], None]
"""Receives one short line per build step ("training tokenizer", "epoch 2/3 loss 0.31")."""

FORMS = (
    "hf-model",
    "hf-trainer-checkpoint",
    "state-dict",
    "notebook",
    "torch-export",
    "xgboost",
    "lightgbm",
    "catboost",
    "fasttext",
    "sentence-transformers",
    "keras",
)
"""The handoff forms a reference model can take (see DESIGN.md, "Forms of checkpoint")."""

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# An option value naming a Python file and an attribute in it ("model.py:Model").
_FILE_AND_ATTRIBUTE = re.compile(r"^(?P<path>[^:]+\.py):(?P<attribute>[A-Za-z_][\w.]*)$")


class ReferenceModelError(ValueError):
    """A reference model was named or defined wrongly (unknown name, duplicate, bad field)."""


@dataclass(frozen=True, kw_only=True)
class ReferenceModel:
    """One registry entry: what the model stands for, how it is handed over, and how to build it."""

    name: str
    summary: str
    form: str
    version: str
    checkpoint: str
    convert_options: Mapping[str, str] = field(default_factory=dict)
    metric: str
    metric_output: str
    chance: float
    builder: Callable[[Path, Progress], None]

    def __post_init__(self) -> None:
        """Validate every field, and freeze convert_options."""
        if not _NAME.match(self.name):
            raise ReferenceModelError(
                f"reference model name must be lower-case words joined by '-', got {self.name!r}"
            )
        if self.form not in FORMS:
            raise ReferenceModelError(
                f"{self.name}: form must be one of {', '.join(FORMS)}; got {self.form!r}"
            )
        if not self.version or "/" in self.version:
            raise ReferenceModelError(
                f"{self.name}: version must be a non-empty string without '/', got {self.version!r}"
            )
        checkpoint = PurePath(self.checkpoint)
        if not self.checkpoint or checkpoint.is_absolute() or ".." in checkpoint.parts:
            raise ReferenceModelError(
                f"{self.name}: checkpoint must be a path inside the built folder, "
                f"got {self.checkpoint!r}"
            )
        try:
            check_metric(self.metric)
        except ValueError as e:
            raise ReferenceModelError(f"{self.name}: {e}") from e
        if not self.summary or "\n" in self.summary:
            raise ReferenceModelError(
                f"{self.name}: summary must be one non-empty line, got {self.summary!r}"
            )
        bad = {
            k: v
            for k, v in self.convert_options.items()
            if not (isinstance(k, str) and isinstance(v, str)) or k.startswith("-")
        }
        if bad:
            raise ReferenceModelError(
                f"{self.name}: convert_options must map option names without dashes "
                f"to strings, got {bad}"
            )
        object.__setattr__(self, "convert_options", MappingProxyType(dict(self.convert_options)))

    @property
    def folder_name(self) -> str:
        """The cache folder name of this build: name and version, so a version bump rebuilds."""
        return f"{self.name}-{self.version}"

    def absolute_options(self, folder: Path) -> Mapping[str, str]:
        """The convert options with every relative path to a file in `folder` made absolute.

        A value is a path if it names a file the build wrote, alone
        ("eval.npz") or followed by an attribute ("outlink_topic.py:OutlinkTopicModel").
        """
        options: dict[str, str] = {}
        for key, value in self.convert_options.items():
            match = _FILE_AND_ATTRIBUTE.match(value)
            path, suffix = (match["path"], f":{match['attribute']}") if match else (value, "")
            candidate = folder / path
            is_file = bool(path) and not PurePath(path).is_absolute() and candidate.is_file()
            options[key] = f"{candidate}{suffix}" if is_file else value
        return MappingProxyType(options)


@dataclass(frozen=True, kw_only=True)
class BuiltReference:
    """A reference model built on disk, with everything a converter or an evaluation needs."""

    model: ReferenceModel
    folder: Path
    checkpoint: Path
    options: Mapping[str, str]
    eval_data: Path


class Registry:
    """Reference models by name; registering a name twice is an error, never a silent override."""

    def __init__(self) -> None:
        """Start empty."""
        self._models: dict[str, ReferenceModel] = {}

    def register(self, model: ReferenceModel) -> ReferenceModel:
        """Add `model`, and return it so a module can keep it as a constant."""
        if model.name in self._models:
            raise ReferenceModelError(f"reference model {model.name!r} is already registered")
        self._models[model.name] = model
        return model

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._models))

    def get(self, name: str) -> ReferenceModel:
        """The model registered as `name`; raise naming the known ones if there is none."""
        try:
            return self._models[name]
        except KeyError:
            raise ReferenceModelError(
                f"unknown reference model {name!r}; known: {', '.join(self.names()) or '(none)'}"
            ) from None


REGISTRY = Registry()
"""The one registry every reference model module adds itself to."""


def register(model: ReferenceModel) -> ReferenceModel:
    """Add `model` to the registry (raises ReferenceModelError on a duplicate name)."""
    return REGISTRY.register(model)


def names() -> tuple[str, ...]:
    """Names of the registered reference models, sorted."""
    return REGISTRY.names()


def get(name: str) -> ReferenceModel:
    """The reference model `name`; an unknown name raises ReferenceModelError listing known ones."""
    return REGISTRY.get(name)
