"""Load a Jupyter notebook: run its code cells in a child process, take the model it leaves.

The notebook runs because the user named it (its code is the model's source). It runs in
``converters.notebook_runner`` as a separate process, in the notebook's folder, under a time
limit; the model comes back as a ``torch.export`` program or a safetensors model folder,
never as a pickle.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from convert_model.core.errors import CheckpointError, UsageError
from converters.registry import LoadOptions, register_loader
from converters.types import CheckpointForm, LoadedModel

_WORKDIRS: list[Path] = []
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@atexit.register
def _remove_workdirs() -> None:
    for folder in _WORKDIRS:
        shutil.rmtree(folder, ignore_errors=True)


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _parent_death_signal(parent: int) -> Callable[[], None]:
    """A preexec hook: the child gets SIGTERM when this process dies, even by SIGKILL.

    prctl is looked up here, in the parent: the hook itself only makes two system calls.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the hook was set
            os._exit(1)

    return setup


def _end_group(child: subprocess.Popen) -> None:
    """Kill the child's whole process group (its background processes too) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def run_notebook(path: Path, options: LoadOptions) -> tuple[dict, Path]:
    """Run the notebook in a child process; return its result and the folder it wrote.

    The child leads its own process group, which is killed on every way out (done, timed
    out, Ctrl-C, SIGTERM, an error); if this process is SIGKILLed the child is told by its
    parent-death signal and ends its group and removes its folder. Its output goes to files,
    so a background process holding them open cannot hold up a finished notebook.
    """
    workdir = Path(tempfile.mkdtemp(prefix="convert-model-notebook-"))
    _WORKDIRS.append(workdir)
    try:
        return _run(path, options, workdir), workdir
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _run(path: Path, options: LoadOptions, workdir: Path) -> dict:
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
    log = workdir / "output.log"
    with log.open("wb") as output:
        child = subprocess.Popen(
            command,
            cwd=path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            preexec_fn=_parent_death_signal(os.getpid()),
        )
    try:
        child.wait(timeout=options.notebook_timeout)
    except subprocess.TimeoutExpired:
        progress = workdir / "progress"
        cell = progress.read_text() if progress.is_file() else "?"
        raise CheckpointError(
            f"{path}: timed out after {options.notebook_timeout:g}s while running cell {cell} "
            "(raise the limit with --notebook-timeout)"
        ) from None
    finally:
        _end_group(child)
    result_file = workdir / "result.json"
    if not result_file.is_file():
        tail = _tail(log.read_text(encoding="utf-8", errors="replace"))
        raise CheckpointError(
            f"{path}: the notebook process died (exit {child.returncode}): {tail}"
        )
    result: dict = json.loads(result_file.read_text(encoding="utf-8"))
    return result


@register_loader(CheckpointForm.NOTEBOOK)
def load_notebook(path: Path, form: CheckpointForm, options: LoadOptions) -> LoadedModel:
    """Run the notebook and load the model it leaves in its namespace.

    The child's folder is removed at once on failure and once a torch.export program is in
    memory; a transformers model's folder lives until exit (its files go into the bundle).
    """
    result, workdir = run_notebook(path, options)
    try:
        loaded = _load_result(path, form, options, result, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    if result["kind"] != "hf":
        shutil.rmtree(workdir, ignore_errors=True)
    return loaded


def _load_result(
    path: Path, form: CheckpointForm, options: LoadOptions, result: dict, workdir: Path
) -> LoadedModel:
    from converters.hf_folder import load_hf_folder
    from converters.torch_export import load_torch_export

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
