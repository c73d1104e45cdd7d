"""``convert-model verify OUT``: re-check a bundle's seal and hashes; re-run parity."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.parity import OutputParity, compare, describe, failures
from convert_model.bundle.integrity import check_seal, path_problem, unlisted
from convert_model.bundle.manifest import MANIFEST_NAME, Manifest, VariantRecord, read_manifest
from convert_model.core.errors import BundleError, UsageError, first_line
from convert_model.core.hashing import sha256_file
from convert_model.core.names import BASELINE


@dataclass(frozen=True, kw_only=True)
class VariantCheck:
    """One variant: its verdict as recorded at conversion and as re-run now.

    ``rerun`` is ``pass`` or ``fail`` (re-run within its budget or not), ``not kept`` (no
    file in the bundle: measured at conversion only) or ``cannot run``. ``figures`` are the
    per-output records of the re-run (stored inputs, or the ``--data`` rows vs fp32).
    """

    name: str
    recorded: str
    rerun: str
    failures: tuple[str, ...] = ()
    figures: tuple[OutputParity, ...] = ()


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """What ``verify`` found: every problem, one line each; none means the bundle holds.

    ``manifest`` is None only when manifest.json was changed so that it no longer parses.
    """

    out: Path
    manifest: Manifest | None
    problems: tuple[str, ...]
    checks: tuple[VariantCheck, ...] = ()
    data: str | None = None  # the --data file the checks ran on, if any

    @property
    def ok(self) -> bool:
        """Whether every hash matched and every variant stayed within its budget."""
        return not self.problems

    def lines(self) -> list[str]:
        """What was checked, one line per variant (and per output with ``--data``)."""
        if self.manifest is None:
            return ["manifest.json does not parse: nothing else was checked"]
        rerun = [c for c in self.checks if c.rerun in ("pass", "fail")]
        where = f"on {self.data}" if self.data else "on the stored sample inputs"
        lines = [f"{len(self.manifest.files)} files hashed; {len(rerun)} of "
                 f"{len(self.manifest.variants)} variant(s) re-run {where}"]
        for c in self.checks:
            lines.append(f"  {c.name:<28} recorded {c.recorded:<5} re-run {c.rerun}")
            lines += [f"      {line}" for line in c.failures[:3]]
            if self.data:
                lines += [f"      {describe(r)}" for r in c.figures]
        return lines


def _recorded(variant: VariantRecord) -> str:
    return "pass" if variant.passed else "fail"


def load_sets(path: Path) -> list[dict[str, np.ndarray]]:
    """The input or output sets stored in a bundle (``INDEX/NAME`` arrays), in order."""
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
    if manifest.generation is not None:  # a generation variant's graphs, one by one
        named += [path for v in manifest.generation.variants for path in v.files.values()]
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
    checks: list[VariantCheck] = []
    stored = (manifest.sample_inputs, manifest.reference_outputs)
    if not any(p.startswith(f"{name}:") for p in problems for name in stored):
        found, checks = _rerun(out, manifest)  # the stored inputs are as written
        problems += found
    if manifest.generation is not None and not problems:
        from convert_model.bundle.generation_files import check_bundle

        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            problems.extend(check_bundle(out, manifest.generation))
        except Exception as e:  # noqa: BLE001  graphs that no longer generate are a finding
            problems.append(f"generation: cannot re-run ({type(e).__name__}: {e})")
        finally:
            sys.dont_write_bytecode = writes_bytecode
    return VerifyResult(out=out, manifest=manifest, problems=tuple(problems),
                        checks=tuple(checks))


def _rerun(out: Path, manifest: Manifest) -> tuple[list[str], list[VariantCheck]]:
    """Each kept variant on the stored inputs against the stored outputs, by its budget."""
    from converters import onnx_graph

    problems: list[str] = []
    checks: list[VariantCheck] = []
    inputs = load_sets(out / manifest.sample_inputs)
    references = load_sets(out / manifest.reference_outputs)
    for variant in manifest.variants:
        if not variant.file:  # measured at conversion, file not kept in the bundle
            checks.append(VariantCheck(name=variant.name, recorded=_recorded(variant),
                                       rerun="not kept"))
            continue
        try:
            sess = onnx_graph.session(out / variant.file)
            records = [
                r
                for check, (feed, ref) in enumerate(zip(inputs, references, strict=True))
                for r in compare(ref, onnx_graph.run(sess, feed), check, feed)
            ]
        except Exception as e:  # noqa: BLE001  a graph that no longer runs is a finding
            line = f"cannot run {variant.file} ({type(e).__name__}: {first_line(e)})"
            problems.append(f"{variant.name}: {line}")
            checks.append(VariantCheck(name=variant.name, recorded=_recorded(variant),
                                       rerun="cannot run", failures=(line,)))
            continue
        lines = failures(records, variant.budget)
        problems.extend(f"{variant.name}: {line}" for line in lines)
        checks.append(VariantCheck(name=variant.name, recorded=_recorded(variant),
                                   rerun="fail" if lines else "pass", failures=tuple(lines),
                                   figures=tuple(records)))
    return problems, checks


def check_data(out: Path, data: Path) -> VerifyResult:
    """Run the bundle on the user's rows: schema first, then each kept variant against fp32.

    ``data`` is an ``.npz`` with one array per graph input. A tabular bundle's input must
    have the schema's feature count; a mismatch is a UsageError naming the expected features.
    """
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
        holes = np.flatnonzero(np.isnan(feed[schema["input"]]).any(axis=1))
        if schema.get("missing") == "not accepted" and holes.size:
            raise UsageError(
                f"{data}: row(s) {', '.join(map(str, holes[:5].tolist()))}"
                f"{' …' if holes.size > 5 else ''} hold NaN, and this model does not accept "
                "missing values (its input schema says so); fill or drop them"
            )
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
    reference = _run_rows(out / manifest.variant(BASELINE).file, feed, data)
    problems: list[str] = []
    checks = []
    for variant in manifest.variants:
        if not variant.file or variant.name == BASELINE:
            continue
        records = compare(reference, _run_rows(out / variant.file, feed, data), 0, feed)
        lines = failures(records, variant.budget)
        problems.extend(f"{variant.name} vs fp32 on {data.name}: {line}" for line in lines)
        checks.append(VariantCheck(name=variant.name, recorded=_recorded(variant),
                                   rerun="fail" if lines else "pass", failures=tuple(lines),
                                   figures=tuple(records)))
    return VerifyResult(out=out, manifest=manifest, problems=tuple(problems),
                        checks=tuple(checks), data=str(data))


def _run_rows(path: Path, feed: Mapping[str, np.ndarray], data: Path) -> dict[str, np.ndarray]:
    """Run one graph on the user's rows; rows the graph rejects are bad input (exit 2)."""
    from converters import onnx_graph

    try:
        return onnx_graph.run(onnx_graph.session(path), feed)
    except Exception as e:
        raise UsageError(f"{data}: the bundle's {path.name} rejects these rows "
                         f"({type(e).__name__}: {first_line(e)})") from e


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
