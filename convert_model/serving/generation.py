"""Generative models: text (or token ids) and settings in, sequences (and text) out.

The generation loop is the bundle's own ``runtime/`` (numpy and onnxruntime), over the
recommended generation variant's graphs. Items batch together only with equal prompt length
and equal settings, so a batch needs no padding and answers what a single request would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .bundle_info import BundleInfo, bundle_module
from .inputs import MAX_TEXT_CHARS, Item, RequestError

# Settings a request may set, with their upper bounds (a request cannot ask for unbounded work).
SETTINGS: dict[str, tuple[type, float]] = {
    "max_new_tokens": (int, 1024), "num_beams": (int, 16), "min_length": (int, 1024),
    "min_new_tokens": (int, 1024), "max_length": (int, 2048), "no_repeat_ngram_size": (int, 16),
    "repetition_penalty": (float, 100.0), "length_penalty": (float, 100.0),
    "early_stopping": (bool, 1),
}
FOLDER = "generation"


class GenerationKind:
    """Prompts as text (with tokenizer.json) or ``input_ids``, plus generation settings."""

    name = "generation"

    def __init__(self, info: BundleInfo) -> None:
        """Read the recommended generation variant and the tokenizer, if the bundle has one."""
        generation = info.generation or {}
        variants = {v["name"]: v for v in generation.get("variants", [])}
        chosen = variants.get(generation.get("recommended")) or variants.get("fp32")
        if chosen is None:
            raise RequestError("the bundle has no generation variant to serve", 500)
        self.info = info
        self.variant = chosen
        self.tokenizer = None
        if info.tokenizer_file is not None:
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(info.tokenizer_file))
            self.tokenizer.no_padding()
            if info.max_tokens:
                self.tokenizer.enable_truncation(max_length=info.max_tokens)
        self.settings: Any = None  # set by open_engine
        self.pad_id = 0

    def open_engine(self, threads: int) -> GenerationEngine:
        """Open the variant's graphs through the bundle's generation loop."""
        runtime = bundle_module(self.info)
        folder = self.info.folder / FOLDER
        files = {role: path.rsplit("/", 1)[-1] for role, path in self.variant["files"].items()}
        generator = runtime.Generator(folder / self.variant["name"], files=files,
                                      config_folder=folder, threads=threads)
        self.settings = generator.settings
        pad = generator.settings.pad_or_eos
        self.pad_id = 0 if pad is None else int(pad)
        return GenerationEngine(generator, self)

    def _options(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        raw = instance.get("parameters") or {}
        if not isinstance(raw, Mapping):
            raise RequestError("parameters must be an object of generation settings")
        options: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in SETTINGS:
                raise RequestError(f"unknown generation setting {name!r}; allowed: "
                                   f"{', '.join(sorted(SETTINGS))}")
            kind, bound = SETTINGS[name]
            ok = isinstance(value, bool) if kind is bool else (
                isinstance(value, int | float) and not isinstance(value, bool)
                and (kind is float or float(value).is_integer()) and 0 <= value <= bound)
            if not ok:
                raise RequestError(f"generation setting {name!r} must be a {kind.__name__} "
                                   f"between 0 and {bound:g}, got {value!r}")
            options[name] = kind(value)
        if self.settings is not None:
            try:
                self.settings.with_overrides(options)
            except ValueError as e:
                raise RequestError(f"generation settings: {e}") from e
        return options

    def parse(self, instance: Any) -> Item:
        """A string, or ``{"text" | "input_ids": ..., "parameters": {...}}``."""
        if isinstance(instance, str):
            instance = {"text": instance}
        if not isinstance(instance, Mapping):
            raise RequestError("a generation instance is a string or an object with text or "
                               f"input_ids; got {type(instance).__name__}")
        extra = sorted(set(instance) - {"text", "input_ids", "parameters"})
        if extra:
            raise RequestError(f"unknown field {extra[0]!r}; allowed: text, input_ids, parameters")
        options = self._options(instance)
        if "text" in instance:
            text = instance["text"]
            if self.tokenizer is None:
                raise RequestError("this bundle has no tokenizer.json: send input_ids")
            if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
                raise RequestError(f"text must be a string of at most {MAX_TEXT_CHARS} characters")
            ids = self.tokenizer.encode(text).ids
        else:
            ids = instance.get("input_ids")
        array = np.asarray(ids)
        if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
            raise RequestError("input_ids must be a non-empty list of integers")
        vocab = self.info.config.get("vocab_size")
        if isinstance(vocab, int) and (array.min() < 0 or array.max() >= vocab):
            raise RequestError(f"input_ids must lie in [0, {vocab})")
        limit = self.info.max_tokens
        if limit and array.size > limit:
            array = array[:limit]
        feed = {"input_ids": array.astype(np.int64)[None, :]}
        key = ("generation", array.size, tuple(sorted(options.items())))
        return Item(feed=feed, key=key, length=int(array.size), options=options)

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """``text`` BYTES [n] or ``input_ids`` INT64 [n, length]."""
        if "text" in arrays:
            return [self.parse({"text": t.decode() if isinstance(t, bytes) else str(t)})
                    for t in np.asarray(arrays["text"]).reshape(-1)]
        if "input_ids" in arrays:
            ids = np.asarray(arrays["input_ids"])
            if ids.ndim != 2:
                raise RequestError("input_ids must have shape [n, length]")
            return [self.parse({"input_ids": row.tolist()}) for row in ids]
        raise RequestError("a generation request takes a text or an input_ids tensor")

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Stack prompts of one length."""
        return {"input_ids": np.concatenate([i.feed["input_ids"] for i in items])}

    def decode(self, ids: np.ndarray) -> str | None:
        """Token ids to text without special tokens, when there is a tokenizer."""
        if self.tokenizer is None:
            return None
        return str(self.tokenizer.decode([int(t) for t in ids], skip_special_tokens=True))

    def describe(self) -> dict[str, Any]:
        """Forms a generative model takes."""
        return {"instances": ["text", {"text": "...", "parameters": {"max_new_tokens": 32}},
                              {"input_ids": [0, 1, 2]}],
                "settings": {k: f"{t.__name__} <= {b:g}" for k, (t, b) in SETTINGS.items()},
                "variant": self.variant["name"], "tokenizer": self.tokenizer is not None}


class GenerationEngine:
    """Runs prompts of one length and one settings through the bundle's Generator."""

    def __init__(self, generator: Any, kind: GenerationKind) -> None:
        """Keep the generator."""
        self.generator = generator
        self.kind = kind

    def run(self, items: Sequence[Item]) -> list[dict[str, np.ndarray]]:
        """Generate; one ``sequences`` row per item."""
        ids = self.kind.collate(items)["input_ids"]
        mask = np.ones_like(ids)
        sequences = self.generator.generate(ids, mask, **dict(items[0].options))
        return [{"sequences": sequences[i:i + 1]} for i in range(len(items))]
