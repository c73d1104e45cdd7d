"""The bundle's ``manifest.json``: what was converted, how, and the evidence that it agrees."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.parity import OutputParity, ParityBudget
from convert_model.core.errors import BundleError
from convert_model.core.names import BASELINE

SCHEMA_VERSION = 2  # 2: generation variants are variant records; generation is typed
MANIFEST_NAME = "manifest.json"
SAMPLE_INPUTS = "sample_inputs.npz"
REFERENCE_OUTPUTS = "reference_outputs.npz"
NOT_KEPT = ""  # VariantRecord.file of a variant measured but not written into the bundle


@dataclass(frozen=True, kw_only=True)
class VariantRecord:
    """One variant in the bundle: how it was made, its parity and speed, and the verdict.

    A forward variant is one ONNX ``file``; ``parity`` holds one record per output and check
    shape (``check`` >= 0) and, when an eval set was given, per output over the eval set
    (``check`` == -1). A generation variant is a folder (``file``) of graphs by role
    (``files``), judged on generated tokens (``greedy_identical``, ``beam_identical``,
    ``scores``); its ``speedup`` is in tokens/s, and ``ttft_speedup`` in time to first token.
    """

    name: str
    file: str
    sha256: str
    precision: str
    device: str
    budget: ParityBudget
    parity: tuple[OutputParity, ...]
    failures: tuple[str, ...]
    recipe: tuple[Mapping[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    size_bytes: int = 0
    task_metric: float | None = None
    latency: Mapping[str, Any] | None = None
    speedup: float | None = None
    reason: str = ""
    description: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    greedy_identical: float | None = None
    beam_identical: float | None = None
    scores: Mapping[str, float] | None = None
    ttft_speedup: float | None = None

    @property
    def passed(self) -> bool:
        """Whether every output stayed within the budget."""
        return not self.failures

    @property
    def kept(self) -> bool:
        """Whether its graph is (still) a file in the bundle."""
        return self.file != NOT_KEPT

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "name": self.name,
            "file": self.file,
            "sha256": self.sha256,
            "precision": self.precision,
            "device": self.device,
            "size_bytes": self.size_bytes,
            "status": "pass" if self.passed else "fail",
            "reason": self.reason,
            "budget": self.budget.to_json(),
            "failures": list(self.failures),
            "task_metric": self.task_metric,
            "latency": dict(self.latency) if self.latency else None,
            "speedup": self.speedup,
            "recipe": [dict(r) for r in self.recipe],
            "details": dict(self.details),
            "parity": [p.to_json() for p in self.parity],
        } | ({
            "description": self.description,
            "files": dict(self.files),
            "greedy_identical": self.greedy_identical,
            "beam_identical": self.beam_identical,
            "scores": dict(self.scores) if self.scores is not None else None,
            "ttft_speedup": self.ttft_speedup,
        } if self.files else {})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VariantRecord:
        """Rebuild from the manifest form."""
        return cls(
            name=data["name"],
            file=data["file"],
            sha256=data["sha256"],
            precision=data["precision"],
            device=data["device"],
            budget=ParityBudget(**data["budget"]),
            parity=tuple(OutputParity.from_json(p) for p in data["parity"]),
            failures=tuple(data["failures"]),
            recipe=tuple(data.get("recipe", ())),
            details=data.get("details", {}),
            size_bytes=data.get("size_bytes", 0),
            task_metric=data.get("task_metric"),
            latency=data.get("latency"),
            speedup=data.get("speedup"),
            reason=data.get("reason", ""),
            description=data.get("description", ""),
            files=data.get("files", {}),
            greedy_identical=data.get("greedy_identical"),
            beam_identical=data.get("beam_identical"),
            scores=data.get("scores"),
            ttft_speedup=data.get("ttft_speedup"),
        )


@dataclass(frozen=True, kw_only=True)
class GenerationResult:
    """The generation stage's record: the graphs' split, what they were checked on, variants.

    Attributes:
        split: the export's layout (kind, files by role, merged, opset).
        examples: how many inputs generation was checked on.
        labelled: whether they had labels (and so a task metric).
        metric: the task metric on labelled data.
        num_beams: beams of the beam-search check.
        original: ``model.generate``'s scores and latency.
        variants: one record per set of generation graphs, fp32 first.
        recommended: the variant to serve, or None when fp32 fails its gates.
        threads: the thread count it was measured with.
        notes: recipes not built or dropped, and why.
        vacuous: the original generated nothing but padding/EOS, so identity proves nothing.
    """

    split: Mapping[str, Any]
    examples: int
    labelled: bool
    metric: str | None
    num_beams: int
    original: Mapping[str, Any]
    variants: tuple[VariantRecord, ...]
    recommended: str | None
    threads: int
    notes: tuple[str, ...] = ()
    vacuous: bool = False

    @property
    def baseline(self) -> VariantRecord:
        """The fp32 generation graphs, as exported."""
        return next(v for v in self.variants if v.name == BASELINE)

    @property
    def passed(self) -> bool:
        """Whether the fp32 graphs generate what the original generates, within budget."""
        return self.baseline.passed and self.recommended is not None

    @property
    def failures(self) -> tuple[str, ...]:
        """The fp32 variant's failures, each prefixed with ``generation fp32``."""
        return tuple(f"generation {BASELINE}: {line}" for line in self.baseline.failures)

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "status": "pass" if self.passed else "fail",
            "split": dict(self.split),
            "examples": self.examples,
            "labelled": self.labelled,
            "metric": self.metric,
            "num_beams": self.num_beams,
            "threads": self.threads,
            "original": dict(self.original),
            "variants": [v.to_json() for v in self.variants],
            "recommended": self.recommended,
            "notes": list(self.notes),
            "vacuous": self.vacuous,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenerationResult:
        """Rebuild from the manifest form."""
        return cls(
            split=data["split"],
            examples=data["examples"],
            labelled=data["labelled"],
            metric=data["metric"],
            num_beams=data["num_beams"],
            original=data["original"],
            variants=tuple(VariantRecord.from_json(v) for v in data["variants"]),
            recommended=data["recommended"],
            threads=data["threads"],
            notes=tuple(data.get("notes", ())),
            vacuous=bool(data.get("vacuous", False)),
        )


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything DESIGN.md lists for ``manifest.json``."""

    convert_model_version: str
    created: str
    source: Mapping[str, Any]
    toolchain: Mapping[str, str]
    task: str | None
    model_type: str | None
    export: Mapping[str, Any]
    inputs: tuple[Mapping[str, Any], ...]
    outputs: tuple[Mapping[str, Any], ...]
    reference: str
    variants: tuple[VariantRecord, ...]
    recommended: str | None
    files: Mapping[str, str]
    measurement: Mapping[str, Any] = field(default_factory=dict)
    input_schema: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    generation: GenerationResult | None = None  # generative models: graphs, parity, speed
    schema_version: int = SCHEMA_VERSION
    sample_inputs: str = SAMPLE_INPUTS
    reference_outputs: str = REFERENCE_OUTPUTS

    @property
    def passed(self) -> bool:
        """Whether the fp32 export kept parity and a variant could be recommended.

        A generative model must also generate what the original generates.
        """
        fp32 = next((v for v in self.variants if v.name == BASELINE), None)
        generation_passed = self.generation is None or self.generation.passed
        return (
            fp32 is not None and fp32.passed and self.recommended is not None and generation_passed
        )

    def variant(self, name: str) -> VariantRecord:
        """The variant called ``name``."""
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r}; the bundle has {[v.name for v in self.variants]}")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object written to ``manifest.json``."""
        return {
            "schema_version": self.schema_version,
            "convert_model_version": self.convert_model_version,
            "created": self.created,
            "status": "pass" if self.passed else "fail",
            "source": dict(self.source),
            "toolchain": dict(self.toolchain),
            "task": self.task,
            "model_type": self.model_type,
            "export": dict(self.export),
            "inputs": [dict(i) for i in self.inputs],
            "outputs": [dict(o) for o in self.outputs],
            "reference": self.reference,
            "sample_inputs": self.sample_inputs,
            "reference_outputs": self.reference_outputs,
            "recommended": self.recommended,
            "measurement": dict(self.measurement),
            "input_schema": dict(self.input_schema) if self.input_schema else None,
            "variants": [v.to_json() for v in self.variants],
            "generation": self.generation.to_json() if self.generation is not None else None,
            "files": dict(self.files),
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Rebuild from ``manifest.json``'s object; raise BundleError when it is not one."""
        if not isinstance(data, Mapping):
            raise BundleError("manifest.json is not a JSON object")
        _check_types(data)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"manifest.json schema_version {version!r} is not supported "
                f"(expected {SCHEMA_VERSION})"
            )
        try:
            return cls(
                schema_version=version,
                convert_model_version=data["convert_model_version"],
                created=data["created"],
                source=data["source"],
                toolchain=data["toolchain"],
                task=data["task"],
                model_type=data["model_type"],
                export=data["export"],
                inputs=tuple(data["inputs"]),
                outputs=tuple(data["outputs"]),
                reference=data["reference"],
                variants=tuple(VariantRecord.from_json(v) for v in data["variants"]),
                recommended=data["recommended"],
                files=data["files"],
                notes=tuple(data.get("notes", ())),
                measurement=data.get("measurement", {}),
                input_schema=data.get("input_schema"),
                generation=GenerationResult.from_json(data["generation"])
                if data.get("generation") else None,
                sample_inputs=data["sample_inputs"],
                reference_outputs=data["reference_outputs"],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BundleError(f"manifest.json is malformed ({type(e).__name__}: {e})") from e


_FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("source", dict, "an object"),
    ("toolchain", dict, "an object"),
    ("export", dict, "an object"),
    ("inputs", list, "a list"),
    ("outputs", list, "a list"),
    ("variants", list, "a list"),
    ("files", dict, "an object of path -> sha256"),
    ("sample_inputs", str, "a file name"),
    ("reference_outputs", str, "a file name"),
    ("notes", list, "a list"),
    ("measurement", dict, "an object"),
    ("input_schema", (dict, type(None)), "an object or null"),
    ("generation", (dict, type(None)), "an object or null"),
    ("recommended", (str, type(None)), "a variant name or null"),
)


def _check_types(data: Mapping[str, Any]) -> None:
    """BundleError naming the first field whose JSON type is not the manifest's."""
    for key, kind, expected in _FIELD_TYPES:
        if key in data and not isinstance(data[key], kind):
            raise BundleError(
                f"manifest.json: {key!r} must be {expected}, got {type(data[key]).__name__}"
            )
    files = data.get("files", {})
    bad = [k for k, v in files.items() if not isinstance(v, str)] if isinstance(files, dict) else []
    if bad:
        raise BundleError(f"manifest.json: 'files' entry {bad[0]!r} must map to a sha256 string")
    for key in ("variants", "inputs", "outputs"):
        if any(not isinstance(v, dict) for v in data.get(key, [])):
            raise BundleError(f"manifest.json: every entry of {key!r} must be an object")


def write_manifest(folder: Path, manifest: Manifest, key: bytes | None = None) -> Path:
    """Write ``manifest.json`` into ``folder`` with its digest (and signature, given ``key``)."""
    from convert_model.bundle.integrity import seal

    path = folder / MANIFEST_NAME
    path.write_text(
        json.dumps(manifest.to_json(), indent=2, allow_nan=True) + "\n", encoding="utf-8"
    )
    seal(folder, key)
    return path


def read_manifest(folder: Path) -> Manifest:
    """Read ``folder/manifest.json``; raise BundleError when missing or malformed."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{folder}: no {MANIFEST_NAME}; is this a convert-model bundle?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise BundleError(f"bundle {folder} corrupt: {MANIFEST_NAME} is not valid JSON ({e})"
                          ) from e
    try:
        return Manifest.from_json(data)
    except BundleError as e:
        raise BundleError(f"bundle {folder} corrupt: {e}") from e
