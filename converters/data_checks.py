"""Check user data (eval sets, calibration samples) against the model before it is run.

Each array must have the rank of the model's example input, its size on every fixed axis
and a numeric dtype; token ids must lie inside the vocabulary and sequences within the
position limit, when the model's config gives them. A fault is one UsageError naming the
file, the input and what the model takes, instead of a failure deep in the model (or a
parity failure that blames the conversion).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from convert_model.core.errors import UsageError
from converters.types import LoadedModel

_ID_INPUTS = ("input_ids", "decoder_input_ids")


def _takes(example: np.ndarray, dynamic: Mapping[int, str]) -> str:
    dims = [dynamic.get(a, str(size)) for a, size in enumerate(example.shape)]
    return f"[{', '.join(dims)}] of {example.dtype}"


def check_inputs(path: Path | str, arrays: Mapping[str, np.ndarray], loaded: LoadedModel,
                 what: str = "input") -> None:
    """UsageError when ``arrays`` do not fit ``loaded``'s inputs (see the module)."""
    config = getattr(loaded.hf_model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    positions = getattr(config, "max_position_embeddings", None)
    for name, example in loaded.examples[0].items():
        array = arrays.get(name)
        if array is None:
            continue
        array = np.asarray(array)
        dynamic = dict(loaded.dynamic_axes.get(name, {}))
        takes = _takes(np.asarray(example), dynamic)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise UsageError(f"{path}: {what} {name!r} holds {array.dtype} values; the model "
                             f"takes {takes}")
        fixed = [a for a in range(1, example.ndim) if a not in dynamic]
        if array.ndim != example.ndim or any(array.shape[a] != example.shape[a] for a in fixed):
            raise UsageError(f"{path}: {what} {name!r} has shape {list(array.shape)}; the model "
                             f"takes {takes}")
        if array.ndim and len(array) == 0:
            raise UsageError(f"{path}: {what} {name!r} has no rows")
        if name in _ID_INPUTS and isinstance(vocab, int) and array.size:
            low, high = array.min(), array.max()
            if low < 0 or high >= vocab:
                raise UsageError(f"{path}: {what} {name!r} holds token id "
                                 f"{int(high if high >= vocab else low)}; the vocabulary has "
                                 f"ids 0..{vocab - 1}")
        if isinstance(positions, int) and array.ndim == 2 and name in (*_ID_INPUTS,
                                                                      "attention_mask"):
            if array.shape[1] > positions:
                raise UsageError(f"{path}: {what} {name!r} has sequences of {array.shape[1]} "
                                 f"tokens; the model takes at most {positions}")


def check_sample_data(path: Path | None, loaded: LoadedModel) -> None:
    """``--sample-data``: an .npz with every input, each fitting the model (see the module)."""
    if path is None:
        return
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {n: data[n] for n in loaded.input_names if n in data.files}
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"{path}: cannot read sample data ({e})") from e
    missing = [n for n in loaded.input_names if n not in arrays]
    if missing:
        raise UsageError(f"{path}: sample data lacks inputs {missing}")
    check_inputs(path, arrays, loaded, "sample input")
