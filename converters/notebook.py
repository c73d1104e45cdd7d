"""Load a Jupyter notebook: run its code cells in a child process, take the model it leaves.

The notebook runs because the user named it (its code is the model's source). It runs in
``converters.notebook_runner`` as a separate process, in the notebook's folder, under a time
limit; the model comes back as a ``torch.export`` program or a safetensors model folder,
never as a pickle.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from convert_model.core.errors import CheckpointError, UsageError
from converters.registry import LoadOptions, register_loader
from converters.types import CheckpointForm, LoadedModel

_WORKDIRS: list[Path] = []


@atexit.register
def _remove_workdirs() -> None:
    for folder in _WORKDIRS:
        shutil.rmtree(folder, ignore_errors=True)


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def run_notebook(path: Path, options: LoadOptions) -> tuple[dict, Path]:
    """Run the notebook in a child process; return its result and the folder it wrote."""
    workdir = Path(tempfile.mkdtemp(prefix="convert-model-notebook-"))
    _WORKDIRS.append(workdir)
    command = [
        sys.executable,
        "-m",
        "converters.notebook_runner",
        str(path.resolve()),
        str(workdir),
    ]
    for flag, value in (
        ("--object", options.notebook_object),
        ("--inputs", options.notebook_inputs),
        ("--input-spec", options.input_spec),
    ):
        if value:
            command += [flag, value]
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
    }
    child = subprocess.Popen(
        command,
        cwd=path.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = child.communicate(timeout=options.notebook_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        progress = workdir / "progress"
        cell = progress.read_text() if progress.is_file() else "?"
        raise CheckpointError(
            f"{path}: timed out after {options.notebook_timeout:g}s while running cell {cell} "
            "(raise the limit with --notebook-timeout)"
        ) from None
    result_file = workdir / "result.json"
    if not result_file.is_file():
        raise CheckpointError(
            f"{path}: the notebook process died (exit {child.returncode}): {_tail(stderr)}"
        )
    return json.loads(result_file.read_text(encoding="utf-8")), workdir


@register_loader(CheckpointForm.NOTEBOOK)
def load_notebook(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Run the notebook and load the model it leaves in its namespace."""
    from converters.hf_folder import load_hf_folder
    from converters.torch_export import load_torch_export

    result, workdir = run_notebook(path, options)
    status = result["status"]
    if status == "bad-notebook":
        raise CheckpointError(f"{path}: not a valid notebook ({result['error']})")
    if status == "cell-error":
        where = f"cell {result['cell']}" + (f", line {result['line']}" if result["line"] else "")
        text = f" ({result['text']})" if result.get("text") else ""
        raise CheckpointError(f"{path}: {where}{text} raised {result['error']}")
    if status == "no-model":
        raise CheckpointError(
            f"{path}: the notebook leaves no torch.nn.Module in its namespace; "
            "name the model with --object"
        )
    if status == "ambiguous":
        found = ", ".join(f"{n} ({t})" for n, t in sorted(result["candidates"].items()))
        raise CheckpointError(
            f"{path}: several models in the namespace: {found}; choose one with --object"
        )
    if status == "no-object":
        raise UsageError(f"{path}: {result['error']}")
    if status == "export-error":
        raise CheckpointError(f"{path}: model {result['object']!r}: {result['error']}")
    if result["kind"] == "hf":
        loaded = load_hf_folder(workdir / result["path"], CheckpointForm.HF_MODEL, options)
    else:
        inner = replace(options, input_spec=None) if options.input_spec else options
        loaded = load_torch_export(workdir / result["path"], CheckpointForm.TORCH_EXPORT, inner)
    skipped = result.get("skipped", [])
    notes = [
        f"notebook: ran {result['cells']} code cells; model {result['object']!r}, "
        f"example inputs from {result.get('inputs') or 'the task'}"
    ]
    if skipped:
        notes.append(
            "not executed (magics and shell lines): "
            + "; ".join(f"cell {s['cell']}: {s['line']}" for s in skipped)
        )
    return replace(
        loaded, source=path, form=form, hashed_files=(path,), notes=(*notes, *loaded.notes)
    )
