"""fastText bundles: raw text in, tokenised and hashed by the bundle's own runtime, labels out.

The ids are what fastText's dictionary gives (``runtime/fasttext_text.py`` reads
``fasttext_tokenizer.json``), padded with -1; the graph averages their rows and scores
every label. No fasttext package is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .bundle_info import BundleInfo, bundle_module
from .inputs import MAX_TEXT_CHARS, Item, RequestError, _decode, _power_of_two

INPUT = "ids"
PADDING = -1


class FastTextKind:
    """A text (or ``{"text": ...}``) per instance; a BYTES ``text`` tensor in v2."""

    name = "fasttext"

    def __init__(self, info: BundleInfo, *, max_chars: int = MAX_TEXT_CHARS) -> None:
        """Load the dictionary and hashing settings the bundle carries."""
        self.text = bundle_module(info, "runtime.fasttext_text").FastTextText.load(info.folder)
        schema = info.input_schema or {}
        self.labels: list[str] = list(schema.get("labels") or self.text.labels)
        self.max_chars = max_chars

    def _checked(self, value: Any) -> str:
        if not isinstance(value, str):
            raise RequestError(f"text must be a string, got {type(value).__name__}")
        if len(value) > self.max_chars:
            raise RequestError(
                f"text has {len(value)} characters, over the limit of {self.max_chars}", 413)
        if "\n" in value:
            raise RequestError("text must be one line: fastText reads a newline as its end")
        return value

    def encode(self, text: str) -> Item:
        """One line to an item of one row of ids."""
        ids = self.text.batch([text])
        return Item(feed={INPUT: ids}, key=("fasttext", _power_of_two(ids.shape[1])),
                    length=ids.shape[1])

    def parse(self, instance: Any) -> Item:
        """A string or ``{"text": ...}``."""
        if isinstance(instance, Mapping) and set(instance) == {"text"}:
            instance = instance["text"]
        return self.encode(self._checked(instance))

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """A BYTES tensor ``text`` of shape [n]."""
        if "text" not in arrays:
            return None
        return [self.encode(self._checked(_decode(t)))
                for t in np.asarray(arrays["text"]).reshape(-1)]

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Pad every row of ids to the longest with -1 (a row the graph reads as zeros)."""
        width = max(i.feed[INPUT].shape[1] for i in items)
        rows = [np.pad(i.feed[INPUT], ((0, 0), (0, width - i.feed[INPUT].shape[1])),
                       constant_values=PADDING) for i in items]
        return {INPUT: np.concatenate(rows)}

    def describe(self) -> dict[str, Any]:
        """What a request holds: one line of text per instance."""
        return {"instances": ["one line of text"], "labels": self.labels}
