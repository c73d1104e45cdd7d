"""FLEET.yaml: the models of a fleet, each with its convert options, and the output root.

::

    root: bundles                 # output root, relative to this file; one bundle per model
    ray_data_rows: 100000         # eval sets with more rows are evaluated with Ray Data
    defaults:                     # options every model gets unless it sets its own
      threads: 1                  # the CPUs each conversion reserves and measures with
      precision: auto
    models:
      - checkpoint: reference:articlequality
      - name: tagger
        checkpoint: models/tagger.safetensors
        options:
          model_class: models/tagger.py:Tagger
          input_spec: "x:float32[batch,12]=3x12"
          sweep: "off"

Option names are the command line's and the Python API's (``convert_model.options.OPTIONS``:
``eval_data``, ``accuracy_budget``, ``export_strategy``, ...); values are what the command
line takes (``sweep: "1,4:16"`` or ``off``, ``accuracy_budget: "int8.min_cosine=0.995"`` or
``{int8: {min_cosine: 0.995}}``, ``export_strategy: [dynamo]``). Paths are relative to the
fleet file. Every error names the file, the entry and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert_model.core.errors import UsageError

DEFAULT_RAY_DATA_ROWS = 100_000
DEFAULT_THREADS = 1
TOP_KEYS = ("root", "ray_data_rows", "defaults", "models")
ENTRY_KEYS = ("name", "checkpoint", "options")
SET_BY_FLEET = {
    "out": "the fleet writes each bundle to ROOT/NAME",
    "force": "pass --force to convert-model fleet",
}
PATH_FIELDS = ("eval_data", "sample_data")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REFERENCE_PREFIX = "reference:"


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One model of the fleet: its name (the bundle folder), checkpoint and convert options.

    ``options`` are keyword arguments for ``convert_model.convert``, already converted to
    the types ``ConvertOptions`` takes; ``digest`` fingerprints them, so a re-run knows
    whether a bundle was made with the same options.
    """

    name: str
    checkpoint: str
    options: Mapping[str, Any]
    threads: int
    digest: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise UsageError(f"model name must match {_NAME.pattern}, got {self.name!r}")
        if self.threads < 1:
            raise UsageError(f"threads must be >= 1, got {self.threads}")


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    """A parsed, validated fleet file."""

    path: Path
    root: Path
    models: tuple[ModelEntry, ...]
    ray_data_rows: int = DEFAULT_RAY_DATA_ROWS

    def __post_init__(self) -> None:
        if self.ray_data_rows < 1:
            raise UsageError(f"ray_data_rows must be >= 1, got {self.ray_data_rows}")


def option_names() -> tuple[str, ...]:
    """The option names a fleet entry may set: every convert option the fleet does not own."""
    from convert_model.options import OPTIONS

    return tuple(o.name for o in OPTIONS if o.name not in SET_BY_FLEET)


def load_fleet(path: Path) -> FleetSpec:
    """Read and validate ``path``; raise UsageError naming the entry and field at fault."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"{path}: cannot read the fleet file ({e.strerror})") from e
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from e
    return parse_fleet(data, path)


def parse_fleet(data: Any, path: Path) -> FleetSpec:
    """Validate a loaded fleet document; ``path`` names it in errors and anchors its paths."""
    base = path.resolve().parent

    def fail(where: str, message: str) -> UsageError:
        return UsageError(f"{path}: {where}: {message}")

    if not isinstance(data, Mapping):
        raise fail("top level", f"must be a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = sorted(set(map(str, data)) - set(TOP_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key; known: {', '.join(TOP_KEYS)}")
    root = data.get("root")
    if not isinstance(root, str) or not root.strip():
        raise fail("root", f"must be the output folder (a path), got {root!r}")
    root_path = (base / root).resolve()
    if root_path.exists() and not root_path.is_dir():
        raise fail("root", f"{root_path} exists and is not a folder")
    rows = data.get("ray_data_rows", DEFAULT_RAY_DATA_ROWS)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise fail("ray_data_rows", f"must be a whole number >= 1, got {rows!r}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise fail("defaults", f"must be a mapping of option name to value, got {defaults!r}")
    _convert_options(defaults, base, lambda field, m: fail(f"defaults.{field}", m))
    models = data.get("models")
    if not isinstance(models, Sequence) or isinstance(models, str) or not models:
        raise fail("models", "must be a non-empty list of entries with a 'checkpoint'")
    entries: list[ModelEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(models):
        entry = _entry(raw, index, defaults, base, fail)
        if entry.name in seen:
            raise fail(
                f"models[{index}] ({entry.name})",
                f"name: already used by models[{seen[entry.name]}]; give each model its own name",
            )
        seen[entry.name] = index
        entries.append(entry)
    return FleetSpec(path=path, root=root_path, models=tuple(entries), ray_data_rows=rows)


def _entry(raw: Any, index: int, defaults: Mapping[str, Any], base: Path, fail: Any) -> ModelEntry:
    where = f"models[{index}]"
    if not isinstance(raw, Mapping):
        raise fail(where, f"must be a mapping with keys {', '.join(ENTRY_KEYS)}, got {raw!r}")
    checkpoint = raw.get("checkpoint")
    name = raw.get("name")
    where = f"{where} ({name or checkpoint})" if (name or checkpoint) else where
    unknown = sorted(set(map(str, raw)) - set(ENTRY_KEYS))
    if unknown:
        hint = " (convert options go under 'options')" if unknown[0] in option_names() else ""
        raise fail(where, f"{unknown[0]}: unknown key{hint}; known: {', '.join(ENTRY_KEYS)}")
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise fail(where, f"checkpoint: must be a path or reference:NAME, got {checkpoint!r}")
    checkpoint = _checkpoint(checkpoint, base, lambda m: fail(where, f"checkpoint: {m}"))
    if name is None:
        name = _default_name(checkpoint)
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail(where, f"name: must match {_NAME.pattern} (a folder name), got {name!r}")
    options = raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise fail(where, f"options: must be a mapping of option name to value, got {options!r}")
    merged = {**defaults, **options}
    converted = _convert_options(
        merged, base, lambda field, m: fail(where, f"options.{field}: {m}")
    )
    if converted.get("threads") is None:
        converted["threads"] = DEFAULT_THREADS
    threads = converted["threads"]
    digest_source = {"checkpoint": checkpoint, "options": merged}
    digest = hashlib.sha256(
        json.dumps(digest_source, sort_keys=True, default=str).encode()
    ).hexdigest()
    return ModelEntry(
        name=name, checkpoint=checkpoint, options=converted, threads=threads, digest=digest
    )


def _checkpoint(text: str, base: Path, fail: Any) -> str:
    if text.startswith(REFERENCE_PREFIX):
        import reference_models

        name = text[len(REFERENCE_PREFIX) :]
        if name not in reference_models.names():
            raise fail(f"unknown reference model {name!r}; known: "
                       f"{', '.join(reference_models.names())}")
        return text
    path = (base / text).resolve()
    if not path.exists():
        raise fail(f"{path} does not exist")
    return str(path)


def _default_name(checkpoint: str) -> str:
    if checkpoint.startswith(REFERENCE_PREFIX):
        return checkpoint[len(REFERENCE_PREFIX) :]
    return Path(checkpoint).name.split(".")[0] or "model"


def _convert_options(raw: Mapping[str, Any], base: Path, fail: Any) -> dict[str, Any]:
    """YAML values as ``convert`` takes them (paths made absolute); the option table checks them."""
    from convert_model.options import options_from

    known = option_names()
    converted: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if key in SET_BY_FLEET:
            raise fail(key, f"cannot be set in a fleet file: {SET_BY_FLEET[key]}")
        if key not in known:
            raise fail(key, f"unknown option; known: {', '.join(known)}")
        try:
            converted[key] = _value(key, value, base)
        except (UsageError, TypeError, ValueError) as e:
            raise fail(key, " ".join(str(e).split())) from e
    try:
        options_from(converted)
    except UsageError as whole:
        # Name the field: the first one that fails on its own, else the combination.
        for key, value in converted.items():
            try:
                options_from({key: value})
            except UsageError as e:
                raise fail(key, " ".join(str(e).split())) from e
        raise fail(", ".join(converted), " ".join(str(whole).split())) from whole
    return converted


def _value(key: str, value: Any, base: Path) -> Any:
    """One option's YAML value as ``convert`` takes it: paths relative to the fleet file."""
    if value is None:
        return None
    if key in PATH_FIELDS:
        path = (base / str(value)).resolve()
        if not path.is_file():
            raise UsageError(f"{path} does not exist")
        return path
    if key == "model_class" and isinstance(value, str) and ".py:" in value:
        file, _, attribute = value.rpartition(":")
        candidate = (base / file).resolve()
        if not candidate.is_file():
            raise UsageError(f"{candidate} does not exist")
        return f"{candidate}:{attribute}"
    if key == "sweep" and isinstance(value, bool):  # YAML reads a bare off as False
        return "auto" if value else "off"
    if key == "accuracy_budget" and isinstance(value, Mapping):  # {int8: {min_cosine: 0.995}}
        return ",".join(
            f"{p}.{f}={v}" for p, fields in value.items() for f, v in dict(fields).items()
        )
    return value
