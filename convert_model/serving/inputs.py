"""Pre-processing: a request's instances to graph feeds, one entry per input kind.

``KINDS`` is the table: each entry says when it applies (from the manifest) and how to
build its parser. The first that applies wins; a new checkpoint form adds one entry
(``register_kind``), loud on a duplicate name. Every kind also takes raw tensors keyed by
graph input name (v1 instance objects or v2 tensors), checked against the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .bundle_info import BundleInfo, Tensor

NUMPY_DTYPES = {
    "float32": np.float32, "float16": np.float16, "float64": np.float64, "int64": np.int64,
    "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
}
MAX_TEXT_CHARS = 100_000


class RequestError(ValueError):
    """A request the server refuses; ``status`` is its HTTP code, the message one line."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Keep the message on one line."""
        super().__init__(" ".join(str(message).split()))
        self.status = status


@dataclass(kw_only=True)
class Item:
    """One unit the batcher schedules: a feed with ``rows`` rows, and its batching key.

    Items with equal ``key`` may share a batch; ``length`` is the padded axis for text.
    """

    feed: dict[str, np.ndarray]
    key: Hashable
    rows: int = 1
    length: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)


class InputKind(Protocol):
    """How one kind of model turns request instances into feeds and back into batches."""

    name: str

    def parse(self, instance: Any) -> Item:
        """One v1 instance (or v2 row) to an item; RequestError naming what is wrong."""
        ...

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """Named v2 tensors this kind reads (e.g. ``text``), or None to try raw tensors."""
        ...

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Items with one key to one feed."""
        ...

    def describe(self) -> dict[str, Any]:
        """What a client sends, for the metadata endpoint."""
        ...


def _power_of_two(n: int) -> int:
    return 1 << max(3, math.ceil(math.log2(max(n, 1))))


class TensorKind:
    """Raw tensors keyed by graph input name, checked for names, dtypes and fixed dims."""

    name = "tensor"

    def __init__(self, info: BundleInfo) -> None:
        """Read the graph signature."""
        self.inputs: tuple[Tensor, ...] = info.inputs

    def check(self, arrays: Mapping[str, Any], *, batched: bool) -> Item:
        """Arrays by input name to an item; ``batched`` says the first axis is the batch."""
        if not isinstance(arrays, Mapping):
            raise RequestError(f"expected an object keyed by {list(self.names)}")
        unknown = sorted(set(arrays) - set(self.names))
        if unknown:
            raise RequestError(f"unknown input {unknown[0]!r}; the model takes {list(self.names)}")
        missing = [n for n in self.names if n not in arrays]
        if missing:
            raise RequestError(f"missing input {missing[0]!r}; the model takes {list(self.names)}")
        feed: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            feed[spec.name] = _as_array(spec, arrays[spec.name], batched=batched)
        rows = {a.shape[0] for a in feed.values()}
        if len(rows) != 1:
            raise RequestError(f"inputs disagree on the batch size: {sorted(rows)}")
        key = tuple((n, a.shape[1:], a.dtype.str) for n, a in feed.items())
        return Item(feed=feed, key=key, rows=rows.pop())

    @property
    def names(self) -> tuple[str, ...]:
        """Graph input names."""
        return tuple(t.name for t in self.inputs)

    def parse(self, instance: Any) -> Item:
        """One instance: an object of per-row values by input name."""
        return self.check(instance, batched=False)

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """Raw v2 tensors: the caller's own shapes, batch first."""
        return [self.check(arrays, batched=True)]

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Stack along the batch axis (one key: the same trailing shapes)."""
        return {n: np.concatenate([i.feed[n] for i in items]) for n in items[0].feed}

    def describe(self) -> dict[str, Any]:
        """Inputs by name."""
        return {"tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}
                            for t in self.inputs]}


def _as_array(spec: Tensor, value: Any, *, batched: bool) -> np.ndarray:
    dtype = NUMPY_DTYPES.get(spec.dtype)
    if dtype is None:
        raise RequestError(f"input {spec.name!r} has dtype {spec.dtype}, which JSON cannot carry")
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise RequestError(f"input {spec.name!r}: ragged or malformed array ({e})") from e
    if raw.dtype.kind not in "biuf":
        raise RequestError(f"input {spec.name!r} must be numbers ({spec.dtype}), got {raw.dtype}")
    if np.dtype(dtype).kind in "iub" and raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise RequestError(f"input {spec.name!r} must be integers ({spec.dtype})")
    array: np.ndarray = raw.astype(dtype)
    if not batched:
        array = array[None, ...]
    if array.ndim != spec.rank:
        raise RequestError(
            f"input {spec.name!r} has {array.ndim} dimensions, the model takes {spec.rank} "
            f"(shape {list(spec.shape)})"
        )
    for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
        if isinstance(want, int) and got != want:
            raise RequestError(
                f"input {spec.name!r} axis {axis} is {got}, the model takes {want} "
                f"(shape {list(spec.shape)})"
            )
    if array.shape[0] == 0:
        raise RequestError(f"input {spec.name!r} is empty")
    return array


class TextKind:
    """Strings or text pairs, tokenized from tokenizer.json and truncated at the model's limit."""

    name = "text"

    def __init__(self, info: BundleInfo, *, max_chars: int = MAX_TEXT_CHARS) -> None:
        """Load the tokenizer; padding off (the batcher pads each bucket)."""
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(info.tokenizer_file))
        self.tokenizer.no_padding()
        self.max_tokens = info.max_tokens or 512
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.max_chars = max_chars
        self.pad_id = info.pad_token_id
        self.input_names = info.input_names

    def _text(self, value: Any, what: str) -> str:
        if not isinstance(value, str):
            raise RequestError(f"{what} must be a string, got {type(value).__name__}")
        if len(value) > self.max_chars:
            raise RequestError(
                f"{what} has {len(value)} characters, over the limit of {self.max_chars}", 413
            )
        return value

    def encode(self, text: str, pair: str | None) -> Item:
        """One text (or pair) to an item of one row."""
        encoding = self.tokenizer.encode(text, pair)
        values = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feed = {n: np.asarray([values[n]], dtype=np.int64) for n in self.input_names}
        length = len(encoding.ids)
        return Item(feed=feed, key=("text", _power_of_two(length)), length=length)

    def parse(self, instance: Any) -> Item:
        """A string, ``[text, pair]`` or ``{"text": ..., "text_pair": ...}``."""
        if isinstance(instance, str):
            return self.encode(self._text(instance, "text"), None)
        if isinstance(instance, list) and len(instance) == 2:
            return self.encode(self._text(instance[0], "text"), self._text(instance[1], "pair"))
        if isinstance(instance, Mapping) and "text" in instance:
            extra = sorted(set(instance) - {"text", "text_pair"})
            if extra:
                raise RequestError(f"unknown field {extra[0]!r}; a text takes text, text_pair")
            pair = instance.get("text_pair")
            return self.encode(
                self._text(instance["text"], "text"),
                None if pair is None else self._text(pair, "text_pair"),
            )
        raise RequestError(
            "a text instance is a string, a [text, pair] list, or {\"text\": ..., "
            f"\"text_pair\": ...}}; got {type(instance).__name__}"
        )

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """A BYTES tensor ``text`` (and optionally ``text_pair``) of shape [n]."""
        if "text" not in arrays:
            return None
        texts = [_decode(t) for t in np.asarray(arrays["text"]).reshape(-1)]
        pairs = arrays.get("text_pair")
        pair_list = (None if pairs is None
                     else [_decode(t) for t in np.asarray(pairs).reshape(-1)])
        if pair_list is not None and len(pair_list) != len(texts):
            raise RequestError(f"text has {len(texts)} rows, text_pair {len(pair_list)}")
        return [
            self.encode(self._text(t, "text"),
                        None if pair_list is None else self._text(pair_list[i], "text_pair"))
            for i, t in enumerate(texts)
        ]

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Right-pad every row to the longest in the bucket."""
        width = max(i.feed["input_ids"].shape[1] for i in items)
        feed = {}
        for name in items[0].feed:
            pad = self.pad_id if name == "input_ids" else 0
            feed[name] = np.concatenate([
                np.pad(i.feed[name], ((0, 0), (0, width - i.feed[name].shape[1])),
                       constant_values=pad)
                for i in items
            ])
        return feed

    def describe(self) -> dict[str, Any]:
        """Forms a text model takes."""
        return {"instances": ["text", ["text", "text pair"], {"text": "...", "text_pair": "..."}],
                "v2": {"text": "BYTES [n]", "text_pair": "BYTES [n] (optional)"},
                "max_tokens": self.max_tokens, "truncation": "longest_first"}


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RequestError(f"text is not UTF-8 ({e})") from e
    if isinstance(value, str):
        return value
    raise RequestError(f"text must be strings, got {type(value).__name__}")


@dataclass(frozen=True)
class KindEntry:
    """One row of the table: when a kind applies, and how to build it."""

    name: str
    applies: Callable[[BundleInfo], bool]
    build: Callable[[BundleInfo], Any]


KINDS: list[KindEntry] = []


def register_kind(entry: KindEntry, *, before: str | None = None) -> None:
    """Add a kind to the table (before ``before``); raise on a duplicate name."""
    if any(e.name == entry.name for e in KINDS):
        raise ValueError(f"input kind {entry.name!r} is registered twice")
    names = [e.name for e in KINDS]
    KINDS.insert(names.index(before) if before in names else len(KINDS), entry)


def kind_name(info: BundleInfo) -> str:
    """The name of the first kind in the table that applies to the bundle."""
    return next(e.name for e in KINDS if e.applies(info))  # "tensor" always applies


def choose_kind(info: BundleInfo) -> Any:
    """The first kind in the table that applies to the bundle, built."""
    name = kind_name(info)
    return next(e for e in KINDS if e.name == name).build(info)


def _build_generation(info: BundleInfo) -> Any:
    from .generation import GenerationKind

    return GenerationKind(info)


def _build_tabular(info: BundleInfo) -> Any:
    from .tabular import TabularKind

    return TabularKind(info)


def _build_fasttext(info: BundleInfo) -> Any:
    from .fasttext import FastTextKind

    return FastTextKind(info)


def _build_image(info: BundleInfo) -> Any:
    from .images import ImageKind

    return ImageKind(info)


register_kind(KindEntry("generation", lambda b: b.generation is not None, _build_generation))
register_kind(KindEntry(
    "fasttext", lambda b: (b.input_schema or {}).get("kind") == "fasttext", _build_fasttext
))
register_kind(KindEntry(
    "tabular", lambda b: b.input_schema is not None and "features" in b.input_schema,
    _build_tabular,
))
register_kind(KindEntry(
    "text", lambda b: b.tokenizer_file is not None and "input_ids" in b.input_names, TextKind
))
register_kind(KindEntry(
    "image", lambda b: b.preprocessor is not None and "pixel_values" in b.input_names,
    _build_image,
))
register_kind(KindEntry("tensor", lambda b: True, TensorKind))
