"""Run onnxruntime's tools inside a scratch working directory.

onnxruntime's symbolic shape inference (used by the fp16 converter and quantization
pre-processing) drops ``sym_shape_infer_temp.onnx`` and a UUID-named ``.data`` file into the
current directory when it cannot infer every shape; inside this context those land in a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch_cwd() -> Iterator[Path]:
    """Change into a fresh temporary folder; restore the old cwd and delete it on exit."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="convert-model-scratch-") as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(previous)
