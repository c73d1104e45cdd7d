"""Load a Keras 3 ``.keras`` archive on Keras' torch backend; refuse ``.h5`` and SavedModel.

On the torch backend a Keras model is a ``torch.nn.Module``, so it exports through the
torch path (``torch.onnx.export``). ``KERAS_BACKEND=torch`` is set only while keras is first
imported (the backend is fixed at import) and restored afterwards; a keras already imported
with another backend is refused. A ``.keras`` archive is ``config.json`` plus
``model.weights.h5``; its config can still carry code (a ``Lambda`` layer's marshalled
function), which Keras' ``safe_mode`` refuses: it is loaded in safe mode unless
``--trust-pickle``. Legacy ``.h5`` files and TensorFlow SavedModel folders need TensorFlow
and tf2onnx, which this stack does not install (tensorflow-cpu 2.21 and tf2onnx 1.17 do
resolve against constraints.txt in a dry run, but that path is untested): they are refused
with what to do instead.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import CheckpointError, UsageError, first_line
from converters.registry import LoadOptions, register_loader
from converters.torch_module import flatten_outputs, make_runner, to_torch
from converters.types import CheckpointForm, LoadedModel

ARCHIVE_MEMBERS = ("config.json", "model.weights.h5")
_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
           "uint8": np.uint8}
NO_TENSORFLOW = (
    "needs TensorFlow (tensorflow-cpu and tf2onnx), which this toolkit neither installs nor "
    "supports yet; load it in Keras 3 with TensorFlow elsewhere and save it as .keras "
    "(model.save('model.keras')), then convert that"
)


def import_keras() -> Any:
    """Keras on its torch backend, without leaving KERAS_BACKEND set in the environment."""
    if "keras" in sys.modules:
        imported: Any = sys.modules["keras"]
        backend = imported.backend.backend()
        if backend != "torch":
            raise UsageError(
                f"keras was already imported with the {backend!r} backend; this process needs "
                "the torch backend (unset KERAS_BACKEND or set it to torch)"
            )
        return imported
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError as e:
        raise UsageError(
            "keras is not installed; install the keras extra: "
            "pip install -c constraints.txt -e '.[keras]'"
        ) from e
    finally:
        if previous is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = previous
    return keras


def _check_archive(path: Path) -> None:
    try:
        names = set(zipfile.ZipFile(path).namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: not a readable .keras archive ({e})") from e
    missing = [m for m in ARCHIVE_MEMBERS if m not in names]
    if missing:
        raise CheckpointError(
            f"{path}: a .keras archive holds {' and '.join(ARCHIVE_MEMBERS)}; missing "
            f"{', '.join(missing)}"
        )


def _positional(model: Any) -> Any:
    """The model as ``forward(*inputs)``, in inference mode."""
    import torch

    class KerasInference(torch.nn.Module):
        """A Keras model called with training=False on positional tensors."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> Any:
            return self.model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

    return KerasInference().eval()


def _examples(model: Any, names: tuple[str, ...], seed: int) -> tuple[dict[str, Any], ...]:
    rng = np.random.default_rng(seed)
    sets = []
    for batch in (1, 3):
        feed = {}
        for name, tensor in zip(names, model.inputs, strict=True):
            shape = [batch, *[d if d is not None else 8 for d in tuple(tensor.shape)[1:]]]
            dtype = _DTYPES.get(str(tensor.dtype), np.float32)
            values = rng.standard_normal(shape) if np.issubdtype(dtype, np.floating) else (
                rng.integers(0, 2, shape))
            feed[name] = np.asarray(values, dtype=dtype)
        sets.append(feed)
    return tuple(sets)


@register_loader(CheckpointForm.KERAS)
def load_keras(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """A Keras 3 model saved as ``.keras``, on the torch backend."""
    import torch

    _check_archive(path)
    keras = import_keras()
    try:
        model = keras.saving.load_model(str(path), compile=False,
                                        safe_mode=not options.trust_pickle)
    except ValueError as e:
        text = first_line(e)
        if "safe_mode" in text or "Lambda" in text:
            raise CheckpointError(
                f"{path}: the model holds code (a Lambda layer) that Keras runs when it "
                "loads; re-run with --trust-pickle if you trust its author"
            ) from e
        raise CheckpointError(f"{path}: Keras cannot load it ({text})") from e
    except (TypeError, KeyError, OSError) as e:  # unknown custom classes, broken weights
        raise CheckpointError(f"{path}: Keras cannot load it ({first_line(e)})") from e
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f"{path}: not a model on Keras' torch backend")
    inputs: list[Any] = list(model.inputs)  # type: ignore[arg-type]
    names = tuple(str(t.name).split(":")[0].replace("/", "_") for t in inputs)
    module = _positional(model)
    examples = _examples(model, names, options.seed)
    with torch.inference_mode():
        trial = module(*to_torch(examples[0]).values())
    outputs = tuple(name for name, _ in flatten_outputs(trial))
    return LoadedModel(
        source=path,
        form=form,
        module=module,
        input_names=names,
        output_names=outputs,
        dynamic_axes={
            n: {0: "batch", **{i: f"{n}_dim{i}" for i, d in enumerate(tuple(t.shape)) if i
                               and d is None}}
            for n, t in zip(names, inputs, strict=True)
        },
        examples=examples,
        run=make_runner(module, names, outputs, "args"),
        model_type=f"keras {type(model).__name__}",
        hashed_files=(path,),
        notes=(f"keras {keras.__version__} on the torch backend"
               + (", loaded without safe_mode (--trust-pickle)" if options.trust_pickle
                  else ""),),
    )


@register_loader(CheckpointForm.KERAS_H5, CheckpointForm.TF_SAVEDMODEL)
def refuse_tensorflow(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Legacy Keras ``.h5`` and SavedModel folders: refused, with what to do instead."""
    what = "a Keras .h5 file" if form is CheckpointForm.KERAS_H5 else "a TensorFlow SavedModel"
    raise UsageError(f"{path}: {what} {NO_TENSORFLOW}")
