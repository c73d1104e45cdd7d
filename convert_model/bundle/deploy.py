"""Deployment files in every bundle: the predictor, a Dockerfile, a KServe InferenceService.

``write_deployment(staging, manifest)`` runs while the bundle is staged, before its files
are hashed, so ``verify`` covers what it writes:

- ``serving/``: the KServe predictor (``convert_model/serving``), numpy, onnxruntime,
  tokenizers and kserve only;
- ``Dockerfile``: slim Python, those packages pinned to the versions installed here (the
  ones that produced the bundle's figures), no torch;
- ``inference_service.yaml``: a ``serving.kserve.io/v1beta1`` InferenceService, CPU and
  memory sized from the measured threads and peak memory, thread settings = the CPU limit;
- ``triton/``: for plain tensor models, a model repository for KServe's stock ONNX runtime
  (Triton) with its ``config.pbtxt``;
- a "Deploy it" section appended to MODEL_CARD.md (curl for v1 and v2).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from convert_model.bundle.model_card import MODEL_CARD

SERVING_FOLDER = "serving"
DOCKERFILE = "Dockerfile"
INFERENCE_SERVICE = "inference_service.yaml"
TRITON_FOLDER = "triton"
PINNED = ("onnxruntime", "kserve", "numpy", "tokenizers")
DEFAULT_MEMORY_MI = 1024
TRITON_TYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "int64": "TYPE_INT64",
    "int32": "TYPE_INT32", "int16": "TYPE_INT16", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8",
    "bool": "TYPE_BOOL",
}


UNINSTALLED = {"kserve": "0.21.*"}
"""The ``serve`` extra's range, for a package the converting machine does not have."""


def pinned_versions() -> dict[str, str]:
    """The installed version of every package the container needs.

    kserve is only in the ``serve`` extra: a bundle made without it pins the extra's
    range (``0.21.*``), and the Dockerfile says so.
    """
    versions = {}
    for name in PINNED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name not in UNINSTALLED:
                raise
            versions[name] = UNINSTALLED[name]
    return versions


def service_name(manifest: Mapping[str, Any], report: Mapping[str, Any] | None = None) -> str:
    """A DNS-1123 name for the service: the report's model name, else the source's."""
    raw = str((report or {}).get("model", {}).get("name") or "")
    if not raw:
        source = Path(str(manifest.get("source", {}).get("path", "model")))
        raw = source.parent.name if source.stem in ("model", "models") else source.stem
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:45].strip("-")
    return name or "model"


def _report(staging: Path) -> dict[str, Any]:
    path = staging / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _peak_memory_mi(report: Mapping[str, Any]) -> float | None:
    chosen = next((v for v in report.get("variants", []) if v.get("recommended")), None)
    footprint = (chosen or {}).get("footprint") or {}
    peak = footprint.get("peak_rss_mb")
    return float(peak) if isinstance(peak, int | float) else None


def copy_serving(staging: Path) -> Path:
    """Copy the predictor package's modules into ``staging/serving``."""
    from convert_model import serving

    target = staging / SERVING_FOLDER
    target.mkdir()
    for path in sorted(Path(serving.__file__).parent.glob("*.py")):
        shutil.copy2(path, target / path.name)
    return target


def dockerfile(versions: Mapping[str, str]) -> str:
    """The container: slim Python, the pinned packages, the predictor; the bundle at /mnt/models."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    pins = " ".join(f"{name}=={versions[name]}" for name in PINNED)
    ranges = [name for name in PINNED if versions[name].endswith("*")]
    return "\n".join([
        "# The bundle's KServe predictor. Versions are those that produced the bundle's figures"
        + (f" ({', '.join(ranges)}: not installed there, the serve extra's range)." if ranges
           else "."),
        f"FROM python:{python}-slim",
        f"RUN pip install --no-cache-dir {pins}",
        "COPY serving /app/serving",
        "# KServe's storage initializer puts the bundle (storageUri) at /mnt/models; for a",
        "# local run mount it there: docker run -v $PWD:/mnt/models -p 8080:8080 IMAGE",
        "ENV PYTHONPATH=/app PYTHONUNBUFFERED=1",
        "EXPOSE 8080",
        'ENTRYPOINT ["python", "-m", "serving", "--bundle", "/mnt/models"]',
        "",
    ])


def inference_service(name: str, threads: int, memory_mi: float | None) -> str:
    """A v1beta1 InferenceService with the predictor container, sized from the measurements."""
    request_mi = DEFAULT_MEMORY_MI if memory_mi is None else max(
        256, 64 * math.ceil(memory_mi * 1.25 / 64))
    limit_mi = 2 * request_mi
    sized = ("measured peak memory x 1.25" if memory_mi is not None
             else "not measured (run the conversion with --sweep on to size it)")
    return "\n".join([
        f"# KServe InferenceService for {name}. Memory request: {sized}.",
        "# Build and push the image from the Dockerfile, then set image and STORAGE_URI.",
        "apiVersion: serving.kserve.io/v1beta1",
        "kind: InferenceService",
        "metadata:",
        f"  name: {name}",
        "spec:",
        "  predictor:",
        "    minReplicas: 1",
        "    containers:",
        "      - name: kserve-container",
        f"        image: REGISTRY/{name}-serving:latest",
        "        env:",
        "          - name: STORAGE_URI",
        f"            value: s3://BUCKET/{name}/",
        "          - name: MODEL_NAME",
        f"            value: {name}",
        "          - name: SERVING_THREADS",
        f'            value: "{threads}"',
        "          - name: OMP_NUM_THREADS",
        f'            value: "{threads}"',
        "        ports:",
        "          - containerPort: 8080",
        "            protocol: TCP",
        "        readinessProbe:",
        "          httpGet:",
        "            path: /v2/health/ready",
        "            port: 8080",
        "        livenessProbe:",
        "          httpGet:",
        "            path: /v2/health/live",
        "            port: 8080",
        "        resources:",
        "          requests:",
        f'            cpu: "{threads}"',
        f"            memory: {request_mi}Mi",
        "          limits:",
        f'            cpu: "{threads}"',
        f"            memory: {limit_mi}Mi",
        "",
    ])


def triton_config(name: str, info: Any, threads: int) -> str:
    """``config.pbtxt`` for Triton's onnxruntime backend (full shapes, batch axis -1)."""
    def tensors(items: Any) -> list[str]:
        return [
            f'  {{ name: "{t.name}" data_type: {TRITON_TYPES.get(t.dtype, "TYPE_FP32")} dims: '
            f"[ {', '.join(str(d) if isinstance(d, int) else '-1' for d in t.shape)} ] }}"
            for t in items
        ]
    return "\n".join([
        f'name: "{name}"', 'platform: "onnxruntime_onnx"', "max_batch_size: 0",
        "input [", ",\n".join(tensors(info.inputs)), "]",
        "output [", ",\n".join(tensors(info.outputs)), "]",
        "instance_group [ { kind: KIND_CPU count: 1 } ]",
        f'parameters {{ key: "intra_op_thread_count" value: {{ string_value: "{threads}" }} }}',
        "",
    ])


def examples(kind: str, info: Any) -> tuple[Any, dict[str, Any]]:
    """One v1 instance and one v2 input of the form the predictor takes."""
    if kind in ("text", "fasttext"):
        return "some text", {"name": "text", "datatype": "BYTES", "shape": [1],
                             "data": ["some text"]}
    if kind == "tabular":
        features = list(info.input_schema["features"])
        return {features[0]: 0}, {"name": features[0], "datatype": "FP32", "shape": [1],
                                  "data": [0]}
    if kind == "generation":
        instance: Any = ({"text": "some text", "parameters": {"max_new_tokens": 16}}
                         if info.tokenizer_file else {"input_ids": [2, 3, 4]})
        return instance, {"name": "input_ids", "datatype": "INT64", "shape": [1, 3],
                          "data": [2, 3, 4]}
    first = info.inputs[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]
    size = math.prod(shape)
    zeros = {"name": first.name, "datatype": TRITON_TYPES.get(first.dtype, "FP32")[5:],
             "shape": shape, "data": [0] * size}
    row = [0] * math.prod(shape[1:]) if len(shape) > 1 else 0
    return {t.name: row for t in info.inputs[:1]}, zeros


def card_section(name: str, kind: str, info: Any) -> str:
    """How to deploy the bundle and call it, for MODEL_CARD.md."""
    v1, v2 = examples(kind, info)
    v1_body = json.dumps({"instances": [v1]})
    v2_body = json.dumps({"inputs": [v2]})
    lines = [
        "## Deploy it (KServe)",
        "",
        "```bash",
        "convert-model serve BUNDLE --port 8080   # a KServe model server on this machine",
        f"curl -H 'Content-Type: application/json' localhost:8080/v1/models/{name}:predict "
        f"-d '{v1_body}'",
        f"curl -H 'Content-Type: application/json' localhost:8080/v2/models/{name}/infer "
        f"-d '{v2_body}'",
        "```",
        "",
        f"The predictor (`serving/`, {kind} input) needs no torch. On Kubernetes: build the "
        "`Dockerfile`, upload the bundle, set the image and `STORAGE_URI` in "
        "`inference_service.yaml` and `kubectl apply -f inference_service.yaml`. "
        f"`GET /v2/models/{name}` lists the request forms; `/metrics` serves Prometheus metrics.",
    ]
    if kind == "tensor":
        lines.append("For KServe's stock ONNX runtime (Triton), `triton/` is a model "
                     "repository with its `config.pbtxt`.")
    return "\n".join(lines + [""])


def write_deployment(staging: Path, manifest: Any) -> None:
    """Write serving/, Dockerfile, inference_service.yaml (and triton/) into ``staging``."""
    from convert_model.serving.bundle_info import bundle_info
    from convert_model.serving.inputs import kind_name

    data = manifest.to_json() if hasattr(manifest, "to_json") else dict(manifest)
    report = _report(staging)
    name = service_name(data, report)
    threads = int((data.get("measurement") or {}).get("threads") or 1)
    copy_serving(staging)
    (staging / DOCKERFILE).write_text(dockerfile(pinned_versions()), encoding="utf-8")
    (staging / INFERENCE_SERVICE).write_text(
        inference_service(name, threads, _peak_memory_mi(report)), encoding="utf-8")
    info = bundle_info(staging, data)
    kind = kind_name(info)
    if kind == "tensor":
        version = staging / TRITON_FOLDER / name / "1"
        version.mkdir(parents=True)
        shutil.copy2(staging / info.model_file, version / "model.onnx")
        (version.parent / "config.pbtxt").write_text(triton_config(name, info, threads),
                                                     encoding="utf-8")
    card = staging / MODEL_CARD
    if card.is_file():
        with card.open("a", encoding="utf-8") as f:
            f.write("\n" + card_section(name, kind, info))
