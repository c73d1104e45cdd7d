"""Write the bundle: copied files, stored inputs and outputs, reports, model card, manifest.

Every file is hashed once, after the reports and the model card are written, so the
manifest lists them all; only the manifest itself is not in its own list.
"""

from __future__ import annotations

import datetime as dt
import platform
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.sweep import SweepResult
from convert_model.bundle.manifest import (
    MANIFEST_NAME,
    NOT_KEPT,
    REFERENCE_OUTPUTS,
    SAMPLE_INPUTS,
    Manifest,
    VariantRecord,
    write_manifest,
)
from convert_model.core.hashing import sha256_file, sha256_files
from convert_model.core.names import BASELINE
from converters.types import ExportedGraph, LoadedModel

TOOLCHAIN = (
    "convert-model", "torch", "transformers", "onnx", "onnxruntime", "optimum-onnx", "optimum",
    "onnxscript", "numpy",
)


def toolchain_versions() -> dict[str, str]:
    """Versions of the packages that shaped the bundle."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in TOOLCHAIN:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def prune(records: Sequence[VariantRecord], folder: Path) -> tuple[VariantRecord, ...]:
    """Keep fp32, the recommended variant and a passing GPU variant; delete the other files."""
    recommended = recommended_name(records)
    kept = []
    for record in records:
        keep = record.name in (BASELINE, recommended) or (record.device != "cpu" and record.passed)
        if keep or not record.kept:
            kept.append(record)
            continue
        for path in folder.glob(record.file + "*"):
            path.unlink()
        kept.append(replace(record, file=NOT_KEPT))
    return tuple(kept)


def recommended_name(records: Sequence[VariantRecord]) -> str | None:
    """The variant the choice recommended, if any."""
    return next((r.name for r in records if r.reason.startswith("recommended")), None)


def save_npz(path: Path, sets: Sequence[Mapping[str, np.ndarray]]) -> None:
    """Input or output sets as one npz: ``<set index>/<name>`` per array."""
    arrays: dict[str, Any] = {
        f"{i}/{name}": value for i, s in enumerate(sets) for name, value in s.items()
    }
    np.savez(path, **arrays)


def reference_label(loaded: LoadedModel) -> str:
    """What every variant is compared with and timed against, as the report names it."""
    from converters.export_tabular import TABULAR

    if loaded.module is None:
        return "source ONNX graph (onnxruntime)"
    if loaded.framework in TABULAR:
        return f"original model ({loaded.framework} predict)"
    return "original model (PyTorch eager)"


def write_bundle(
    folder: Path,
    *,
    source: Path,
    loaded: LoadedModel,
    graph: ExportedGraph,
    records: Sequence[VariantRecord],
    references: Sequence[Mapping[str, np.ndarray]],
    measurement: Mapping[str, Any],
    opset: int,
    sweep: SweepResult | None = None,
    generation: Any = None,
    key: bytes | None = None,
) -> Manifest:
    """Write everything but the graphs (already in ``folder``) and return the manifest.

    ``key`` signs manifest.json (manifest.sig) beside its digest (manifest.sha256).
    """
    from benchmarks.report import write_reports
    from convert_model.bundle.deploy import write_deployment
    from convert_model.bundle.model_card import write_model_card

    root = source if source.is_dir() else source.parent
    for file in loaded.files_to_copy:
        # Files in a source folder's sub-folders keep their place (1_Pooling/config.json).
        inside = file.resolve().is_relative_to(root.resolve())
        target = folder / (file.resolve().relative_to(root.resolve()) if inside else file.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
    if (loaded.input_schema or {}).get("runtime"):  # preprocessing the bundle's runtime does
        from convert_model.bundle.generation_files import copy_runtime

        copy_runtime(folder)
    save_npz(folder / SAMPLE_INPUTS, loaded.examples)
    save_npz(folder / REFERENCE_OUTPUTS, references)
    source_sha, source_files = sha256_files(loaded.hashed_files, root)
    versions = toolchain_versions()
    manifest = Manifest(
        convert_model_version=versions["convert-model"],
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        source={"path": str(source.resolve()), "form": str(loaded.form), "sha256": source_sha,
                "files": source_files},
        toolchain=versions,
        task=loaded.task,
        model_type=loaded.model_type,
        export={
            "strategy": graph.strategy,
            "attempts": [a.to_json() for a in graph.attempts],
            "opset": graph.opset,
            "external_data": graph.external_data,
            "padding": graph.padding,
            "options": {"opset": opset, "dynamic": True},
        },
        inputs=tuple(t.to_json() for t in graph.inputs),
        outputs=tuple(t.to_json() for t in graph.outputs),
        reference=reference_label(loaded),
        variants=tuple(records),
        recommended=recommended_name(records),
        files={},  # filled once the reports are written: every file is hashed once
        measurement=measurement,
        input_schema=loaded.input_schema,
        notes=loaded.notes,
        generation=generation,
    )
    # The reports go into the bundle too, so they are hashed before the manifest is written.
    report = write_reports(folder, manifest, sweep)
    write_model_card(folder, report)
    write_deployment(folder, manifest)  # serving/, Dockerfile, InferenceService; hashed below
    manifest = replace(manifest, files=hash_files(folder))
    write_manifest(folder, manifest, key)
    return manifest


def hash_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in the bundle but the manifest, by relative path."""
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
