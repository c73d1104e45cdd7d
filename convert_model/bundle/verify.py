"""``convert-model verify OUT``: re-check a bundle's hashes and re-run parity from its inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.parity import compare, failures
from convert_model.bundle.manifest import MANIFEST_NAME, Manifest, read_manifest
from convert_model.core.errors import BundleError, UsageError
from convert_model.core.hashing import sha256_file


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """What ``verify`` found: every problem, one line each; none means the bundle holds."""

    out: Path
    manifest: Manifest
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
    except (OSError, ValueError) as e:
        raise BundleError(f"{path}: cannot read ({e})") from e
    return [sets[i] for i in sorted(sets)]


def verify(out: Path) -> VerifyResult:
    """Check every file's SHA-256, then re-run each variant on the stored sample inputs."""
    from converters import onnx_graph

    out = Path(out)
    manifest = read_manifest(out)
    problems = []
    for rel, expected in manifest.files.items():
        path = out / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel}: sha256 differs from the manifest (file changed)")
    listed = set(manifest.files) | {MANIFEST_NAME}
    for path in sorted(out.rglob("*")):
        if "__pycache__" in path.parts:  # importing the bundle's runtime/ writes these
            continue
        if path.is_file() and str(path.relative_to(out)) not in listed:
            problems.append(f"{path.relative_to(out)}: not listed in the manifest")
    if not all(
        (out / name).is_file() for name in (manifest.sample_inputs, manifest.reference_outputs)
    ):
        return VerifyResult(out=out, manifest=manifest, problems=tuple(problems))
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
                for r in compare(ref, onnx_graph.run(sess, feed), check, feed)
            ]
        except Exception as e:  # noqa: BLE001  a graph that no longer runs is a finding
            problems.append(f"{variant.name}: cannot run {variant.file} ({type(e).__name__}: {e})")
            continue
        problems.extend(f"{variant.name}: {line}" for line in failures(records, variant.budget))
    if manifest.generation is not None:
        from convert_model.stage_generation import check_bundle

        try:
            problems.extend(check_bundle(out, manifest.generation))
        except Exception as e:  # noqa: BLE001  graphs that no longer generate are a finding
            problems.append(f"generation: cannot re-run ({type(e).__name__}: {e})")
    return VerifyResult(out=out, manifest=manifest, problems=tuple(problems))


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
    reference = onnx_graph.run(onnx_graph.session(out / manifest.variant("fp32").file), feed)
    problems: list[str] = []
    for variant in manifest.variants:
        if variant.file and variant.name != "fp32":
            outputs = onnx_graph.run(onnx_graph.session(out / variant.file), feed)
            lines = failures(compare(reference, outputs), variant.budget)
            problems.extend(f"{variant.name} vs fp32 on {data.name}: {line}" for line in lines)
    return VerifyResult(out=out, manifest=manifest, problems=tuple(problems))
