"""fastText's tokenisation and hashing in numpy, so a bundle serves a fastText model without it.

A supervised fastText model averages rows of its input matrix: for each word of the line
(and the end-of-sentence token ``</s>``), the word's row when the word is in the dictionary
and the rows of its character n-grams; then the rows of the line's word n-grams. This
module computes those row ids exactly as fastText's ``Dictionary::getLine`` does:

- a line is split on ASCII whitespace (space, tab, newline, vertical tab, form feed,
  carriage return, NUL), and ``</s>`` is appended; it ends at its first ``</s>``;
- a token starting with the label prefix (``__label__``) is a label, never a feature;
- a word's character n-grams are those of ``<word>`` with ``minn`` to ``maxn`` UTF-8
  characters (not the lone ``<`` or ``>``), hashed with 32-bit FNV-1a over the bytes,
  each byte sign-extended as fastText's ``int8_t`` cast does, into ``bucket`` rows after
  the ``nwords`` word rows; an unknown word contributes its n-grams only;
- word n-grams (up to ``wordNgrams`` words) combine the words' hashes as
  ``h = h * 116049371 + hash`` in 64 bits.

``FastTextText.batch(texts)`` pads the ids of several lines with -1 into one int64 matrix:
the graph reads row -1 as a row of zeros, and counts only the ids >= 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PADDING = -1
EOS = "</s>"
BOW, EOW = "<", ">"
_WHITESPACE = " \t\n\v\f\r\0"
_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619
_NGRAM_PRIME = 116049371
_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1
TOKENIZER_FILE = "fasttext_tokenizer.json"
_CACHE_SIZE = 200_000  # words whose rows are remembered; cleared when full


def fnv1a(text: str) -> int:
    """The 32-bit hash fastText uses: FNV-1a over UTF-8 bytes, each byte sign-extended."""
    h = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ (byte | 0xFFFFFF00 if byte >= 0x80 else byte)) * _FNV_PRIME) & _U32
    return h


def _as_int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def split(text: str) -> list[str]:
    """The tokens of one line, as fastText's ``readWord`` splits them (without ``</s>``)."""
    tokens: list[str] = []
    current: list[str] = []
    for char in text:
        if char in _WHITESPACE:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


@dataclass(frozen=True, kw_only=True)
class FastTextText:
    """A supervised fastText model's dictionary and hashing settings.

    Attributes:
        words: the dictionary's words, in id order (``</s>`` among them).
        labels: the labels, in output order.
        minn: shortest character n-gram (0 with maxn 0: no n-grams).
        maxn: longest character n-gram.
        bucket: number of hashed rows after the word rows.
        word_ngrams: longest word n-gram (1: words only).
        label_prefix: the prefix that marks a token as a label.
    """

    words: tuple[str, ...]
    labels: tuple[str, ...]
    minn: int
    maxn: int
    bucket: int
    word_ngrams: int
    label_prefix: str = "__label__"

    def __post_init__(self) -> None:
        if self.bucket < 0 or self.minn < 0 or self.maxn < 0 or self.word_ngrams < 1:
            raise ValueError(
                f"bucket, minn, maxn must be >= 0 and word_ngrams >= 1, got bucket "
                f"{self.bucket}, minn {self.minn}, maxn {self.maxn}, word_ngrams "
                f"{self.word_ngrams}"
            )
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})
        object.__setattr__(self, "_cache", {})

    @property
    def nwords(self) -> int:
        """Number of word rows (the hashed rows follow them)."""
        return len(self.words)

    def subword_ids(self, word: str) -> list[int]:
        """Rows of ``word``'s character n-grams, as ``get_subwords`` lists them (no word row)."""
        if self.maxn <= 0 or self.bucket == 0 or word == EOS:
            return []
        chars = BOW + word + EOW
        found = []
        for i in range(len(chars)):
            for n in range(1, self.maxn + 1):
                if i + n > len(chars):
                    break
                if n >= self.minn and not (n == 1 and (i == 0 or i + n == len(chars))):
                    found.append(self.nwords + fnv1a(chars[i : i + n]) % self.bucket)
        return found

    def word_ids(self, word: str) -> list[int]:
        """Rows of one word: its own (when in the dictionary), then its n-grams'."""
        cache: dict[str, tuple[list[int], int]] = self._cache  # type: ignore[attr-defined]
        return self._word(word, cache)[0]

    def _word(self, word: str, cache: dict[str, tuple[list[int], int]]) -> tuple[list[int], int]:
        """A word's rows and its hash (as int32), remembered for the next line."""
        found = cache.get(word)
        if found is None:
            index: Mapping[str, int] = self._index  # type: ignore[attr-defined]
            own = index.get(word)
            if own is not None and self.maxn <= 0:
                rows = [own]
            else:
                rows = ([own] if own is not None else []) + self.subword_ids(word)
            found = (rows, _as_int32(fnv1a(word)))
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[word] = found
        return found

    def ids(self, text: str) -> list[int]:
        """Input-matrix rows of one line, in fastText's order."""
        if "\n" in text:
            raise ValueError("fastText predicts one line at a time; the text holds a newline")
        cache: dict[str, tuple[list[int], int]] = self._cache  # type: ignore[attr-defined]
        rows: list[int] = []
        hashes: list[int] = []
        for token in [*split(text), EOS]:
            if token.startswith(self.label_prefix):
                continue  # a label (known or not) is never a feature
            word_rows, word_hash = self._word(token, cache)
            rows += word_rows
            hashes.append(word_hash)
            if token == EOS:
                break  # fastText reads a line up to its first "</s>", even one typed in it
        if self.bucket > 0:
            for i in range(len(hashes)):
                h = hashes[i] & _U64
                for j in range(i + 1, min(len(hashes), i + self.word_ngrams)):
                    h = (h * _NGRAM_PRIME + (hashes[j] & _U64)) & _U64
                    rows.append(self.nwords + h % self.bucket)
        return rows

    def batch(self, texts: Sequence[str]) -> np.ndarray:
        """The ids of ``texts`` as one int64 matrix, padded with -1 (at least one column)."""
        rows = [self.ids(t) for t in texts]
        out = np.full((len(rows), max([1, *map(len, rows)])), PADDING, dtype=np.int64)
        for r, ids in enumerate(rows):
            out[r, : len(ids)] = ids
        return out

    def to_json(self) -> dict[str, Any]:
        """The form written to ``fasttext_tokenizer.json`` in a bundle."""
        return {
            "kind": "fasttext",
            "minn": self.minn,
            "maxn": self.maxn,
            "bucket": self.bucket,
            "word_ngrams": self.word_ngrams,
            "label_prefix": self.label_prefix,
            "labels": list(self.labels),
            "words": list(self.words),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FastTextText:
        """Rebuild from :meth:`to_json`'s form."""
        return cls(
            words=tuple(data["words"]),
            labels=tuple(data["labels"]),
            minn=int(data["minn"]),
            maxn=int(data["maxn"]),
            bucket=int(data["bucket"]),
            word_ngrams=int(data["word_ngrams"]),
            label_prefix=str(data["label_prefix"]),
        )

    @classmethod
    def load(cls, bundle: str | Path) -> FastTextText:
        """Read ``fasttext_tokenizer.json`` from a bundle folder."""
        path = Path(bundle) / TOKENIZER_FILE
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int = 1,
          threshold: float = 0.0) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """Per row, the ``k`` most probable labels at or above ``threshold`` (k -1: all).

    Returns what fastText's ``predict(text, k, threshold)`` returns for each line: the
    labels, most probable first, and their probabilities.
    """
    results = []
    for row in np.asarray(probabilities):
        order = np.argsort(-row, kind="stable")
        order = order[row[order] >= threshold]
        if k >= 0:
            order = order[:k]
        results.append((tuple(labels[i] for i in order), row[order]))
    return results
