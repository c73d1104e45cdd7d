"""Child process: run a notebook's code cells and hand the model back in a safe form.

Run as ``python -m converters.notebook_runner NOTEBOOK WORKDIR [--object NAME] [--inputs NAME]``
with the notebook's folder as working directory. It writes ``WORKDIR/result.json`` and, on
success, the model: a ``torch.export`` program (``model.pt2``, which carries its example
inputs) for a plain module, or a ``save_pretrained`` folder (``hf_model/``, safetensors) for
a transformers model. The parent never unpickles anything this process produced.

IPython magics (``%pip``), cell magics (``%%bash``) and shell lines (``!wget``) are not run;
the result lists them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

INPUT_NAMES = ("example_inputs", "sample_inputs", "sample_input", "example_input")


def strip_magics(source: str) -> tuple[str, list[str]]:
    """Remove magic and shell lines (a cell magic removes its whole cell); return what was cut."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return "", [lines[0].strip()]
    kept, skipped = [], []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or (stripped.endswith("?") and " " not in stripped):
            skipped.append(stripped)
            kept.append("")  # keep line numbers aligned with the notebook
        else:
            kept.append(line)
    return "\n".join(kept), skipped


def code_cells(notebook: Path) -> list[str]:
    """The source of every code cell, in order."""
    data = json.loads(notebook.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"not a Jupyter notebook: a JSON {type(data).__name__}, not an object")
    if "worksheets" in data and "cells" not in data:
        raise ValueError(
            f"an nbformat {data.get('nbformat', 3)} notebook (cells under 'worksheets'); "
            "open and save it in Jupyter 4 or later, or run 'jupyter nbconvert --to notebook'"
        )
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise ValueError("not a Jupyter notebook: no 'cells' list")
    sources = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise ValueError(f"cell {number} is a JSON {type(cell).__name__}, not an object")
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return sources


def _write(workdir: Path, result: dict[str, Any]) -> None:
    (workdir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


def _candidates(namespace: dict[str, Any]) -> dict[str, str]:
    import torch

    return {
        name: type(value).__name__
        for name, value in namespace.items()
        if isinstance(value, torch.nn.Module) and not name.startswith("_")
    }


def _as_tuple(value: Any) -> tuple[Any, ...]:
    import torch

    # clone(): a slice of a training set is a view, and saving it would save the whole set.
    if isinstance(value, torch.Tensor):
        return (value.detach().clone(),)
    if isinstance(value, (list, tuple)) and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(v.detach().clone() for v in value)
    raise TypeError(
        f"example inputs must be a tensor or a tuple of tensors, got {type(value).__name__}"
    )


def _hand_back(model: Any, inputs: Any, workdir: Path) -> dict[str, Any]:
    """Save the model safely: save_pretrained for transformers, else torch.export."""
    import torch

    if hasattr(model, "save_pretrained") and hasattr(model, "config"):
        model.save_pretrained(workdir / "hf_model", safe_serialization=True)
        return {"kind": "hf", "path": "hf_model"}
    if inputs is None:
        return {
            "kind": "error",
            "error": "no example inputs: name them with --inputs, define "
            f"one of {', '.join(INPUT_NAMES)}, or pass --input-spec",
        }
    model.eval()
    args = _as_tuple(inputs)
    dims = []
    for tensor in args:
        batch = torch.export.Dim("batch") if tensor.dim() and tensor.shape[0] > 1 else None
        dims.append({0: batch} if batch is not None else None)
    try:
        try:
            program = torch.export.export(model, args, dynamic_shapes=tuple(dims))
        except Exception:  # noqa: BLE001  a model that pins its batch size exports static
            program = torch.export.export(model, args)
    except Exception as e:  # noqa: BLE001
        return {
            "kind": "error",
            "error": f"torch.export could not capture the model: "
            f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
        }
    torch.export.save(program, str(workdir / "model.pt2"))
    return {"kind": "torch-export", "path": "model.pt2"}


def run(
    notebook: Path,
    workdir: Path,
    object_name: str | None,
    inputs_name: str | None,
    input_spec: str | None = None,
) -> int:
    """Execute the cells; write result.json; return 0 (the parent reads the result)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    skipped: list[dict[str, Any]] = []
    try:
        cells = code_cells(notebook)
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as e:
        _write(workdir, {"status": "bad-notebook", "error": str(e)})
        return 0
    for index, source in enumerate(cells, start=1):
        (workdir / "progress").write_text(str(index), encoding="utf-8")
        code, cut = strip_magics(source)
        skipped += [{"cell": index, "line": line} for line in cut]
        try:
            compiled = compile(code, f"<cell {index}>", "exec")
            exec(compiled, namespace)
        except BaseException as e:  # noqa: BLE001  report any failure, SystemExit included
            line_no, text = _failing_line(e, index, code)
            _write(
                workdir,
                {
                    "status": "cell-error",
                    "cell": index,
                    "line": line_no,
                    "text": text,
                    "error": f"{type(e).__name__}: {e}",
                    "skipped": skipped,
                },
            )
            return 0
    candidates = _candidates(namespace)
    result: dict[str, Any] = {"skipped": skipped, "candidates": candidates, "cells": len(cells)}
    if object_name is not None:
        if object_name not in namespace:
            result.update(status="no-object", error=f"the notebook defines no {object_name!r}")
            _write(workdir, result)
            return 0
        chosen = object_name
    elif len(candidates) == 1:
        chosen = next(iter(candidates))
    else:
        result.update(status="no-model" if not candidates else "ambiguous")
        _write(workdir, result)
        return 0
    if inputs_name is not None and inputs_name not in namespace:
        result.update(status="no-object", error=f"the notebook defines no {inputs_name!r}")
        _write(workdir, result)
        return 0
    inputs_key = inputs_name or next((n for n in INPUT_NAMES if n in namespace), None)
    inputs = namespace.get(inputs_key) if inputs_key else None
    if input_spec:
        import torch

        from converters.input_spec import parse_input_spec

        spec = parse_input_spec(input_spec)
        example = spec.examples()[-1]
        inputs, inputs_key = tuple(torch.from_numpy(example[n]) for n in spec.names), "--input-spec"
    handed = _hand_back(namespace[chosen], inputs, workdir)
    if handed["kind"] == "error":
        result.update(status="export-error", error=handed["error"], object=chosen)
    else:
        result.update(status="ok", object=chosen, inputs=inputs_key, **handed)
    _write(workdir, result)
    return 0


def _failing_line(error: BaseException, index: int, code: str) -> tuple[int | None, str]:
    if isinstance(error, SyntaxError) and error.filename == f"<cell {index}>":
        return error.lineno, (error.text or "").strip()
    frames = [
        f for f in traceback.extract_tb(error.__traceback__) if f.filename == f"<cell {index}>"
    ]
    if not frames:
        return None, ""
    line_no = frames[-1].lineno
    lines = code.splitlines()
    text = lines[line_no - 1].strip() if line_no and 0 < line_no <= len(lines) else ""
    return line_no, text


def _end_on_sigterm(workdir: Path) -> None:
    """On SIGTERM (the parent's death signal, or a kill): remove the folder, end the group."""

    def end(signum: int, frame: Any) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        os.killpg(0, signal.SIGKILL)  # this process leads the group: its children go too

    signal.signal(signal.SIGTERM, end)


def main() -> int:
    """Entry point of the child process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--object")
    parser.add_argument("--inputs")
    parser.add_argument("--input-spec")
    args = parser.parse_args()
    _end_on_sigterm(args.workdir)
    return run(args.notebook, args.workdir, args.object, args.inputs, args.input_spec)


if __name__ == "__main__":
    sys.exit(main())
