"""A generative bundle's own files: the loop (``runtime/``), the stored check, and its re-run."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.generation import generate_all, padded
from convert_model.bundle.manifest import GenerationResult
from convert_model.core.names import BASELINE

FOLDER = "generation"
RUNTIME_FOLDER = "runtime"
CHECK_FILE = "check.npz"  # prompts and the original's greedy tokens, for ``verify``
CHECK_PROMPTS = 16


def copy_runtime(bundle: Path) -> Path:
    """Copy the generation loop (``convert_model/runtime``) into ``bundle/runtime``."""
    from convert_model import runtime

    source = Path(runtime.__file__).parent
    target = bundle / RUNTIME_FOLDER
    target.mkdir(exist_ok=True)
    for path in sorted(source.glob("*.py")):
        shutil.copy2(path, target / path.name)
    return target


def save_check(bundle: Path, inputs: Mapping[str, np.ndarray],
               greedy: Sequence[np.ndarray]) -> None:
    """Store the first prompts and the original's greedy tokens (-1 padded) for ``verify``."""
    count = min(len(greedy), CHECK_PROMPTS)
    arrays: dict[str, Any] = {name: value[:count] for name, value in inputs.items()}
    arrays["greedy"] = padded(greedy[:count], fill=-1)
    np.savez(bundle / FOLDER / CHECK_FILE, **arrays)


def check_bundle(bundle: Path, generation: GenerationResult, threads: int = 1) -> list[str]:
    """Re-run the fp32 generation graphs on the stored prompts; list every row that differs."""
    from benchmarks.generators import bundle_generator

    fp32 = next((v for v in generation.variants if v.name == BASELINE), None)
    if fp32 is None:
        return [f"generation: no {BASELINE} variant in the manifest"]
    with np.load(bundle / FOLDER / CHECK_FILE, allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    expected = stored.pop("greedy")
    generate, generator = bundle_generator(bundle, fp32.files, threads)
    rows = generate_all(generate, stored, num_beams=1, batch_size=len(expected),
                        pad_token_id=generator.settings.pad_token_id)
    problems = []
    for i, (row, want) in enumerate(zip(rows, expected, strict=True)):
        if not np.array_equal(row, want[want != -1]):
            problems.append(f"generation {BASELINE}: prompt {i} generates {row.tolist()}, "
                            f"the original generated {want[want != -1].tolist()}")
    return problems
