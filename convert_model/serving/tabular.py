"""Tabular bundles: JSON objects keyed by feature name, in any order, as the schema names them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .bundle_info import BundleInfo
from .inputs import Item, RequestError


class TabularKind:
    """JSON objects keyed by feature name in any order; missing ones follow the schema."""

    name = "tabular"

    def __init__(self, info: BundleInfo) -> None:
        """Read the input schema."""
        schema = info.input_schema or {}
        self.input = str(schema["input"])
        self.features: list[str] = [str(f) for f in schema["features"]]
        self.index = {f: i for i, f in enumerate(self.features)}
        self.missing = str(schema.get("missing", "NaN"))
        self.fill = np.float32(0.0) if self.missing == "zero" else np.float32(np.nan)

    def row(self, values: Mapping[str, Any]) -> np.ndarray:
        """One object to a float32 row in schema order."""
        row = np.full(len(self.features), self.fill, dtype=np.float32)
        for name, value in values.items():
            index = self.index.get(name)
            if index is None:
                raise RequestError(f"unknown feature {name!r}; the model takes "
                                   f"{len(self.features)} features ({', '.join(self.features)})")
            if value is None:
                continue
            if isinstance(value, bool):
                value = float(value)
            if not isinstance(value, int | float):
                raise RequestError(
                    f"feature {name!r} must be a number, true/false or null, "
                    f"got {type(value).__name__}"
                )
            row[index] = value
        return row

    def parse(self, instance: Any) -> Item:
        """An object by feature name, or a list in schema order."""
        if isinstance(instance, Mapping):
            row = self.row(instance)
        elif isinstance(instance, list):
            if len(instance) != len(self.features):
                raise RequestError(f"a list instance needs {len(self.features)} values in "
                                   f"schema order, got {len(instance)}")
            row = self.row(dict(zip(self.features, instance, strict=True)))
        else:
            raise RequestError("a tabular instance is an object keyed by feature name, got "
                               f"{type(instance).__name__}")
        return Item(feed={self.input: row[None, :]}, key="tabular")

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """One v2 tensor per feature (shape [n]); raw ``input`` goes to the tensor check."""
        if self.input in arrays:
            return None
        columns = {n: np.asarray(a).reshape(-1) for n, a in arrays.items()}
        sizes = {len(c) for c in columns.values()}
        if len(sizes) != 1:
            raise RequestError(f"feature tensors disagree on rows: {sorted(sizes)}")
        items = []
        for r in range(sizes.pop()):
            values = {}
            for n, c in columns.items():
                if c.dtype.kind not in "biuf":
                    raise RequestError(f"feature {n!r} must be numbers, got {c.dtype}")
                values[n] = float(c[r])
            items.append(Item(feed={self.input: self.row(values)[None, :]}, key="tabular"))
        return items

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Stack rows."""
        return {self.input: np.concatenate([i.feed[self.input] for i in items])}

    def describe(self) -> dict[str, Any]:
        """The features, their dtype and the missing-value convention."""
        return {"features": self.features, "dtype": "float32", "missing": self.missing,
                "instances": [{"FEATURE": "number | true/false | null"}]}
