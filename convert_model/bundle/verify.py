"""``convert-model verify OUT``: re-check a bundle's hashes and re-run parity from its inputs."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.parity import compare, failures
from convert_model.bundle.integrity import check_seal, path_problem, unlisted
from convert_model.bundle.manifest import MANIFEST_NAME, Manifest, read_manifest
from convert_model.core.errors import BundleError, UsageError
from convert_model.core.hashing import sha256_file

GENERATION_FOLDER = "generation"  # stage_generation.FOLDER, without importing torch's side


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """What ``verify`` found: every problem, one line each; none means the bundle holds.

    ``manifest`` is None only when manifest.json was changed so that it no longer parses.
    """

    out: Path
    manifest: Manifest | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every hash matched and every variant stayed within its budget."""
        return not self.problems


def _load_sets(path: Path) -> list[dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            sets: dict[int, dict[str, np.ndarray]] = {}
            for key in data.files:
                index, name = key.split("/", 1)
                sets.setdefault(int(index), {})[name] = data[key]
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BundleError(f"{path}: cannot read ({e})") from e
    return [sets[i] for i in sorted(sets)]


def _named_files(manifest: Manifest) -> list[str]:
    """Every file the manifest points at besides its ``files`` table."""
    named = [manifest.sample_inputs, manifest.reference_outputs]
    named += [v.file for v in manifest.variants if v.file]
    return named


def file_problems(out: Path, manifest: Manifest) -> tuple[list[str], bool]:
    """Hash, path and listing problems; and whether a path leaves the bundle (run nothing)."""
    problems: list[str] = []
    escapes = False
    for rel in sorted({*manifest.files, *_named_files(manifest)}):
        problem = path_problem(out, rel)
        if problem is not None:
            problems.append(problem)
            escapes = True
        elif rel not in manifest.files:
            problems.append(f"{rel}: named by the manifest but not in its files list")
        elif not (out / rel).is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(out / rel) != manifest.files[rel]:
            problems.append(f"{rel}: sha256 differs from the manifest (file changed)")
    generation = manifest.generation or {}
    for g in generation.get("variants", ()) if isinstance(generation, dict) else ():
        name = g.get("name") if isinstance(g, dict) else None
        problem = path_problem(out, f"{GENERATION_FOLDER}/{name}")
        if problem is not None:
            problems.append(f"generation variant {name!r}: {problem}")
            escapes = True
    problems += unlisted(out, manifest.files)
    return problems, escapes


def verify(out: Path, key: bytes | None = None) -> VerifyResult:
    """Check the manifest's seal, every file's hash and listing, then re-run each variant.

    The seal is manifest.sha256 (and manifest.sig, given ``key``); every file must be listed
    with its SHA-256 and nothing else may be in the bundle. Nothing runs when a path leaves
    the bundle; the bundle's Python (the generation loop) runs only when every file is as
    listed, and writes no bytecode cache.
    """
    out = Path(out)
    if not (out / MANIFEST_NAME).is_file():
        raise BundleError(f"{out}: no {MANIFEST_NAME}; is this a convert-model bundle?")
    problems = check_seal(out, key)
    try:
        manifest = read_manifest(out)
    except BundleError as e:
        if not problems:
            raise
        return VerifyResult(out=out, manifest=None, problems=(*problems, str(e)))
    found, escapes = file_problems(out, manifest)
    problems += found
    if escapes:
        return VerifyResult(out=out, manifest=manifest, problems=tuple(problems))
    stored = (manifest.sample_inputs, manifest.reference_outputs)
    if not any(p.startswith(f"{name}:") for p in problems for name in stored):
        problems += _parity_problems(out, manifest)  # the stored inputs are as written
    if manifest.generation is not None and not problems:
        from convert_model.stage_generation import check_bundle

        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            problems.extend(check_bundle(out, manifest.generation))
        except Exception as e:  # noqa: BLE001  graphs that no longer generate are a finding
            problems.append(f"generation: cannot re-run ({type(e).__name__}: {e})")
        finally:
            sys.dont_write_bytecode = writes_bytecode
    return VerifyResult(out=out, manifest=manifest, problems=tuple(problems))


def _parity_problems(out: Path, manifest: Manifest) -> list[str]:
    from converters import onnx_graph

    problems = []
    inputs = _load_sets(out / manifest.sample_inputs)
    references = _load_sets(out / manifest.reference_outputs)
    for variant in manifest.variants:
        if not variant.file:  # measured at conversion, file not kept in the bundle
            continue
        try:
            sess = onnx_graph.session(out / variant.file)
            records = [
                r
                for check, (feed, ref) in enumerate(zip(inputs, references, strict=True))
                for r in compare(ref, onnx_graph.run(sess, feed), check)
            ]
        except Exception as e:  # noqa: BLE001  a graph that no longer runs is a finding
            problems.append(f"{variant.name}: cannot run {variant.file} ({type(e).__name__}: {e})")
            continue
        problems.extend(f"{variant.name}: {line}" for line in failures(records, variant.budget))
    return problems


def check_data(out: Path, data: Path) -> VerifyResult:
    """Run the bundle on the user's rows: schema first, then each kept variant against fp32.

    ``data`` is an ``.npz`` with one array per graph input. A tabular bundle's input must
    have the schema's feature count; a mismatch is a UsageError naming the expected features.
    """
    from converters import onnx_graph

    out = Path(out)
    manifest = read_manifest(out)
    try:
        with np.load(data, allow_pickle=False) as npz:
            feed = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{data}: cannot read the data ({e})") from e
    schema = manifest.input_schema
    if schema is not None:
        features = list(schema["features"])
        matrix = feed.get(schema["input"])
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] != len(features):
            got = "no array" if matrix is None else f"shape {list(matrix.shape)}"
            raise UsageError(
                f"{data}: input {schema['input']!r} needs {len(features)} features "
                f"({', '.join(features)}); got {got}"
            )
        feed[schema["input"]] = matrix.astype(np.float32)
    names = [i["name"] for i in manifest.inputs]
    missing = [n for n in names if n not in feed]
    if missing:
        raise UsageError(f"{data}: lacks inputs {missing}; the bundle takes {names}")
    for spec in manifest.inputs:
        _check_shape(data, spec, feed[spec["name"]])
    for variant in manifest.variants:
        problem = path_problem(out, variant.file) if variant.file else None
        if problem is not None:
            raise BundleError(f"bundle {out} corrupt: {problem}")
    reference = onnx_graph.run(onnx_graph.session(out / manifest.variant("fp32").file), feed)
    problems: list[str] = []
    for variant in manifest.variants:
        if variant.file and variant.name != "fp32":
            outputs = onnx_graph.run(onnx_graph.session(out / variant.file), feed)
            lines = failures(compare(reference, outputs), variant.budget)
            problems.extend(f"{variant.name} vs fp32 on {data.name}: {line}" for line in lines)
    return VerifyResult(out=out, manifest=manifest, problems=tuple(problems))


def _check_shape(data: Path, spec: Mapping[str, Any], array: np.ndarray) -> None:
    """UsageError when ``array`` has the wrong rank or a fixed dim of the wrong size."""
    shape = list(spec.get("shape", []))
    fixed = {i: d for i, d in enumerate(shape) if isinstance(d, int)}
    if array.ndim != len(shape) or any(array.shape[i] != d for i, d in fixed.items()):
        want = ", ".join(str(d) for d in shape)
        raise UsageError(
            f"{data}: input {spec['name']!r} has shape {list(array.shape)}; the bundle takes "
            f"[{want}] ({spec.get('dtype', '?')})"
        )
