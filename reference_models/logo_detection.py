"""logo-detection: a small CNN image classifier, handed over as the Jupyter notebook that trains it.

The notebook's cells live in `_logo_detection_notebook.py` (percent format).
The build writes them out as `logo_detection.ipynb` and runs the very same
code to get the trained model, which it exports with `torch.export` (dynamic
batch) to `logo_detection.pt2`: the form converters can take today, until
notebooks are converted directly.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.notebook import Cell, code_of, parse_percent, write_notebook
from reference_models.registry import Progress, ReferenceModel, register

SEED = 20240504
EVAL_IMAGES = 256
EVAL_SEED = SEED + 2  # the notebook uses SEED for training and SEED + 1 for its held-out check
MAX_BATCH = 1024
NOTEBOOK_FILE = "logo_detection.ipynb"
EXPORT_FILE = "logo_detection.pt2"


def notebook_cells() -> tuple[Cell, ...]:
    """The notebook's cells, from the percent-format source shipped in this package."""
    source = (
        resources.files("reference_models")
        .joinpath("_logo_detection_notebook.py")
        .read_text(encoding="utf-8")
    )
    return parse_percent(source)


class _LinesToProgress(io.TextIOBase):
    """A text stream that hands each complete line printed to it to a progress callback."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._progress(f"notebook: {line}")
        return len(text)


def run_notebook(cells: tuple[Cell, ...], progress: Progress) -> dict[str, Any]:
    """Run the code cells in order in a fresh `__main__` namespace, as Jupyter would; return it."""
    import torch

    namespace: dict[str, Any] = {"__name__": "__main__"}
    code = compile(code_of(cells), NOTEBOOK_FILE, "exec")
    with redirect_stdout(_LinesToProgress(progress)):
        exec(code, namespace)
    model, example_inputs = namespace.get("model"), namespace.get("example_inputs")
    if not isinstance(model, torch.nn.Module) or model.training:
        raise RuntimeError(
            "the logo-detection notebook must leave `model` in eval mode, "
            f"got {type(model).__name__}"
        )
    if not (
        isinstance(example_inputs, tuple)
        and all(isinstance(t, torch.Tensor) for t in example_inputs)
    ):
        raise RuntimeError(
            "the logo-detection notebook must leave `example_inputs` as a tuple of tensors, "
            f"got {type(example_inputs).__name__}"
        )
    return namespace


def build(folder: Path, progress: Progress) -> None:
    """Write the notebook, run it, and write the exported model, eval set and samples."""
    import torch

    from reference_models.determinism import deterministic

    cells = notebook_cells()
    write_notebook(folder / NOTEBOOK_FILE, cells)
    progress(f"running {NOTEBOOK_FILE} ({sum(c.cell_type == 'code' for c in cells)} code cells)")
    with deterministic(SEED):
        namespace = run_notebook(cells, progress)
        model = namespace["model"]
        # The notebook's example inputs are views of its training set; cloned, the
        # .pt2 stores two images rather than all the storage behind them.
        example_inputs = tuple(t.clone() for t in namespace["example_inputs"])
        progress("exporting with torch.export (dynamic batch)")
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        exported = torch.export.export(
            model, example_inputs, dynamic_shapes={"pixel_values": {0: batch}}
        )
        torch.export.save(exported, folder / EXPORT_FILE)
        images, labels = namespace["make_images"](EVAL_IMAGES, seed=EVAL_SEED)
    write_eval(folder, {"pixel_values": images.numpy()}, labels.numpy())
    write_samples(
        folder,
        {
            "labels": list(namespace["LABELS"]),
            "input": "pixel_values: float32 (batch, 3, 224, 224), RGB in [0, 1] as (x - 0.5) / 0.5",
            "first_eval_labels": [namespace["LABELS"][int(i)] for i in np.asarray(labels[:8])],
        },
    )


REFERENCE = register(
    ReferenceModel(
        name="logo-detection",
        summary=(
            "small CNN (224x224 RGB -> logo / out_of_domain) handed over as the Jupyter "
            "notebook that trains it (a .pt2 export lies beside it)"
        ),
        form="notebook",
        version="3",
        checkpoint=NOTEBOOK_FILE,
        convert_options={},
        metric="accuracy",
        # The model returns one tensor, which converters name "output".
        metric_output="output",
        chance=0.5,
        builder=build,
    )
)
