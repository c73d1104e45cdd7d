"""What the predictor needs to know about its bundle, read from manifest.json and the configs.

Reads only JSON files the conversion wrote; nothing here runs code from the bundle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
PREPROCESSOR = "preprocessor_config.json"
# Models whose position table holds two offset rows (transformers' padding_idx + 1).
_POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2}
_UNLIMITED = 1_000_000  # transformers' stand-in for "no model_max_length"


class BundleReadError(ValueError):
    """The bundle cannot be served: a file is missing or malformed (message names it)."""


@dataclass(frozen=True, kw_only=True)
class Tensor:
    """One graph input or output as the manifest lists it."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)


@dataclass(frozen=True, kw_only=True)
class BundleInfo:
    """The bundle facts the predictor's pre- and post-processing are chosen from."""

    folder: Path
    manifest: Mapping[str, Any]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    model_file: str
    config: Mapping[str, Any] = field(default_factory=dict)
    tokenizer_config: Mapping[str, Any] = field(default_factory=dict)
    preprocessor: Mapping[str, Any] | None = None

    @property
    def task(self) -> str | None:
        """The task the manifest names (text-classification, ...), if any."""
        return self.manifest.get("task")

    @property
    def input_schema(self) -> Mapping[str, Any] | None:
        """Tabular models: feature names, dtype and missing-value convention."""
        return self.manifest.get("input_schema")

    @property
    def generation(self) -> Mapping[str, Any] | None:
        """Generative models: the manifest's generation record."""
        return self.manifest.get("generation")

    @property
    def input_names(self) -> tuple[str, ...]:
        """Graph input names in order."""
        return tuple(t.name for t in self.inputs)

    @property
    def tokenizer_file(self) -> Path | None:
        """``tokenizer.json`` when the bundle has one."""
        path = self.folder / TOKENIZER
        return path if path.is_file() else None

    @property
    def id2label(self) -> dict[int, str] | None:
        """Class names by index from config.json, when the model has them."""
        raw = self.config.get("id2label")
        if not isinstance(raw, Mapping) or not raw:
            return None
        return {int(k): str(v) for k, v in raw.items()}

    @property
    def max_tokens(self) -> int | None:
        """The longest token sequence the model takes (tokenizer and position table limits)."""
        limits = []
        tokenizer_limit = self.tokenizer_config.get("model_max_length")
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _UNLIMITED:
            limits.append(tokenizer_limit)
        positions = self.config.get("max_position_embeddings")
        if isinstance(positions, int) and positions > 0:
            limits.append(positions - _POSITION_OFFSET.get(str(self.config.get("model_type")), 0))
        return min(limits) if limits else None

    @property
    def pad_token_id(self) -> int:
        """The id padding uses (config's pad_token_id, else 0)."""
        pad = self.config.get("pad_token_id")
        return pad if isinstance(pad, int) else 0


def _json(path: Path, *, required: bool = False) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise BundleReadError(f"{path}: missing; is this a convert-model bundle?")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleReadError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(data, dict):
        raise BundleReadError(f"{path}: not a JSON object")
    return data


def _tensors(items: Any, where: str) -> tuple[Tensor, ...]:
    try:
        return tuple(
            Tensor(name=str(t["name"]), dtype=str(t["dtype"]), shape=tuple(t["shape"]))
            for t in items
        )
    except (KeyError, TypeError) as e:
        raise BundleReadError(f"manifest.json: malformed {where} ({e})") from e


def read_bundle(folder: Path) -> BundleInfo:
    """Read the bundle in ``folder``; raise BundleReadError naming a missing or bad file."""
    return bundle_info(Path(folder), _json(Path(folder) / MANIFEST, required=True))


def bundle_info(folder: Path, manifest: Mapping[str, Any]) -> BundleInfo:
    """The facts of a bundle folder whose manifest is ``manifest`` (written or not yet)."""
    recommended = manifest.get("recommended")
    variants = {v.get("name"): v for v in manifest.get("variants") or []}
    chosen = variants.get(recommended) or variants.get("fp32")
    if chosen is None or not chosen.get("file"):
        raise BundleReadError(f"{folder / MANIFEST}: no recommended or fp32 variant to serve")
    generation = manifest.get("generation")
    config_folder = folder / "generation" if generation else folder
    config = _json(config_folder / "config.json") or _json(folder / "config.json")
    preprocessor = _json(folder / PREPROCESSOR) or None
    return BundleInfo(
        folder=folder,
        manifest=manifest,
        inputs=_tensors(manifest.get("inputs") or [], "inputs"),
        outputs=_tensors(manifest.get("outputs") or [], "outputs"),
        model_file=str(chosen["file"]),
        config=config,
        tokenizer_config=_json(folder / "tokenizer_config.json"),
        preprocessor=preprocessor,
    )


def bundle_module(info: BundleInfo, name: str = "runtime") -> Any:
    """A module of the bundle's own ``runtime/`` (its folder on the path, as a container has it)."""
    import importlib
    import sys

    folder = str(info.folder.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)
