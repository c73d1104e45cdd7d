"""Load a supervised fastText model (``.bin``) with the fasttext package.

The graph takes ``ids``: int64 [batch, ids], each row the input-matrix rows of one line
(words, their character n-grams, word n-grams) as the bundle's numpy runtime computes them
(``convert_model/runtime/fasttext_text.py``), padded with -1. The original is fastText's
own ``predict(texts, k=-1)``: to run it on an input set, each row is mapped back to the
text it was made from (rows the tokeniser did not make, such as a sweep's tiled rows,
cannot be run by the original and say so). Its output ``probabilities`` holds every
label's probability in label order, as ``predict`` reports it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import CheckpointError, first_line
from convert_model.runtime.fasttext_text import PADDING, TOKENIZER_FILE, FastTextText
from converters.forms import FASTTEXT_MAGIC
from converters.registry import LoadOptions, register_loader
from converters.sample_text import SENTENCES
from converters.tabular import import_extra
from converters.types import CheckpointForm, Inputs, LoadedModel, Outputs

INPUT = "ids"
OUTPUT = "probabilities"
LOSSES = {"softmax": "softmax", "ova": "sigmoid", "ns": "sigmoid"}
_ARGS = struct.Struct("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket ...
_DICTIONARY = struct.Struct("<iiiqq")  # size nwords nlabels ntokens pruneidx_size
_VERSION = 12
_SUPERVISED = 3  # fastText's model_name::sup


def _check_layout(path: Path) -> None:
    """Walk the file's sections and compare their sizes with the file's.

    fastText loads a truncated file without a word, so a short file is refused here.
    """
    data = path.read_bytes()
    if data[:4] != FASTTEXT_MAGIC:
        raise CheckpointError(f"{path}: not a fastText model (wrong magic number)")
    try:
        (version,) = struct.unpack_from("<i", data, 4)
        if version > _VERSION:
            raise CheckpointError(f"{path}: fastText file version {version} is newer than 12")
        args = _ARGS.unpack_from(data, 8)
        if args[7] != _SUPERVISED:
            raise CheckpointError(
                f"{path}: an unsupervised fastText model (word vectors); only supervised "
                "classifiers convert"
            )
        offset = 8 + _ARGS.size
        size, _, _, _, pruned = _DICTIONARY.unpack_from(data, offset)
        offset += _DICTIONARY.size
        for _ in range(size):
            end = data.index(b"\0", offset)
            offset = end + 1 + 8 + 1  # the word, its count (int64), its type (int8)
        offset += max(pruned, 0) * 8
        for _ in range(2):  # the input then the output matrix
            if data[offset]:
                raise CheckpointError(
                    f"{path}: a quantized fastText model (.ftz); only full models convert"
                )
            rows, cols = struct.unpack_from("<qq", data, offset + 1)
            offset += 1 + 16 + 4 * rows * cols
    except (struct.error, ValueError, IndexError) as e:
        raise CheckpointError(f"{path}: truncated fastText model ({first_line(e)})") from e
    if offset != len(data):
        raise CheckpointError(
            f"{path}: truncated or corrupt fastText model ({len(data)} bytes, its header "
            f"describes {offset})"
        )


def text_settings(model: Any) -> FastTextText:
    """The dictionary and hashing settings of a loaded fasttext model."""
    args = model.f.getArgs()
    return FastTextText(
        words=tuple(model.get_words(on_unicode_error="replace")),
        labels=tuple(model.get_labels(on_unicode_error="replace")),
        minn=int(args.minn),
        maxn=int(args.maxn),
        bucket=int(args.bucket),
        word_ngrams=int(args.wordNgrams),
        label_prefix=str(args.label),
    )


def check_texts(model: Any, settings: FastTextText) -> list[str]:
    """Lines for the parity checks: known words, unknown words, an empty line, labels."""
    words = [w for w in settings.words if w != "</s>"]
    rng = np.random.default_rng(0)
    picked = [str(w) for w in rng.choice(words, size=min(len(words), 40), replace=False)]
    label = settings.labels[0] if settings.labels else "__label__x"
    return [
        " ".join(picked[:6]),
        "",
        f"{label} " + " ".join(picked[6:12]),
        "\t".join(picked[12:16]) + "  unseenwordqq été 😀",
        *[" ".join(s.split()[:12]) for s in SENTENCES[:2]],
        " ".join(picked[16:40]),
        "__label__never_seen " + " ".join(reversed(picked[:5])),
    ]


@register_loader(CheckpointForm.FASTTEXT)
def load_fasttext(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """A supervised fastText classifier saved with ``save_model``."""
    _check_layout(path)
    fasttext = import_extra("fasttext", extra="fasttext")
    try:
        model = fasttext.load_model(str(path))
    except ValueError as e:
        raise CheckpointError(f"{path}: not a loadable fastText model ({first_line(e)})") from e
    loss = str(model.f.getArgs().loss).rsplit(".", 1)[-1]
    if loss not in LOSSES:
        raise CheckpointError(
            f"{path}: fastText loss {loss!r} (hierarchical softmax) has no faithful graph; "
            f"retrain with loss one of {', '.join(LOSSES)}"
        )
    settings = text_settings(model)
    index = {label: i for i, label in enumerate(settings.labels)}
    texts_of: dict[bytes, str] = {}

    def encode(texts: Sequence[str]) -> Inputs:
        matrix = settings.batch(texts)
        for row, text in zip(matrix, texts, strict=True):
            texts_of.setdefault(_key(row), text)
        return {INPUT: matrix}

    def run(feed: Inputs) -> Outputs:
        texts = []
        for number, row in enumerate(np.asarray(feed[INPUT])):
            text = texts_of.get(_key(row))
            if text is None:
                raise ValueError(
                    f"row {number} of the ids was not made from a text by the bundle's "
                    "tokeniser; fastText's predict takes text"
                )
            texts.append(text)
        labels, probabilities = model.predict(texts, k=-1)
        out = np.zeros((len(texts), len(settings.labels)), dtype=np.float32)
        for r, (names, values) in enumerate(zip(labels, probabilities, strict=True)):
            out[r, [index[n] for n in names]] = values
        return {OUTPUT: out}

    texts = check_texts(model, settings)
    examples = (encode(texts[:1]), encode(texts))
    args = model.f.getArgs()
    schema = {
        "kind": "fasttext",
        "input": INPUT,
        "dtype": "int64",
        "padding": PADDING,
        "tokenizer": TOKENIZER_FILE,
        "runtime": "runtime/fasttext_text.py",
        "loss": loss,
        "output": OUTPUT,
        "activation": LOSSES[loss],
        "labels": list(settings.labels),
        "predict": "probabilities as fastText's predict reports them: p + 1e-5 "
        "(it takes log(p + 1e-5) and exp's it back)",
        "split_on": "ASCII whitespace; '</s>' appended; a newline is refused",
    }
    return LoadedModel(
        source=path,
        form=form,
        module=model,
        input_names=(INPUT,),
        output_names=(OUTPUT,),
        dynamic_axes={INPUT: {0: "batch", 1: "ids"}},
        examples=examples,
        run=run,
        task="text-classification",
        model_type=f"fasttext supervised ({loss}, dim {int(args.dim)}, "
        f"{len(settings.labels)} labels)",
        hashed_files=(path,),
        framework="fasttext",
        input_schema=schema,
        notes=(
            f"fastText: {settings.nwords} words, {settings.bucket} buckets, char n-grams "
            f"{settings.minn}..{settings.maxn}, word n-grams up to {settings.word_ngrams}; "
            f"tokenised by the bundle's runtime (numpy), probabilities by {LOSSES[loss]}",
        ),
        encode=encode,
    )


def _key(row: np.ndarray) -> bytes:
    return np.ascontiguousarray(row[row != PADDING], dtype=np.int64).tobytes()

