"""The ``kserve.Model`` that serves a bundle: load, then async pre-process, predict, post-process.

Inference runs in the batcher's inference thread, never on the event loop. ``ready`` turns
true only once the session is open and a warm-up request has run through it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kserve
import numpy as np
from kserve import InferRequest, InferResponse
from kserve.protocol.infer_type import InferOutput

from .batcher import BatchConfig, Batcher
from .bundle_info import BundleInfo, read_bundle
from .engine import Engine, open_engine
from .inputs import Item, RequestError, TensorKind, choose_kind
from .metrics import observe_predictions
from .outputs import Postprocessor
from .threads import ThreadChoice, intra_op_threads

log = logging.getLogger("kserve.serving")  # under KServe's configured logger
MAX_INSTANCES = 1024
V2_DATATYPES = {
    "float32": "FP32", "float16": "FP16", "float64": "FP64", "int64": "INT64", "int32": "INT32",
    "int16": "INT16", "int8": "INT8", "uint8": "UINT8", "bool": "BOOL", "object": "BYTES",
}


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """A decoded request: its protocol and items (a request of n instances has n items)."""

    protocol: str
    items: list[Item]
    request_id: str


@dataclass(frozen=True, kw_only=True)
class Answered:
    """Per-item outputs of a parsed request."""

    parsed: Parsed
    results: list[dict[str, np.ndarray]]


def _stack(results: Sequence[Mapping[str, np.ndarray]], pad: int) -> dict[str, np.ndarray]:
    stacked: dict[str, np.ndarray] = {}
    for name in results[0]:
        parts = [r[name] for r in results]
        width = max(p.shape[1] if p.ndim > 1 else 0 for p in parts)
        if all(p.ndim == 2 for p in parts) and any(p.shape[1] != width for p in parts):
            parts = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=pad)
                     for p in parts]  # generated sequences of unequal length
        stacked[name] = np.concatenate(parts)
    return stacked


class BundleModel(kserve.Model):
    """Serves the recommended variant of one bundle, with the bundle's pre/post-processing."""

    def __init__(self, name: str, bundle: Path, *, threads: int | None = None,
                 batching: BatchConfig | None = None, spin: bool = False) -> None:
        """Read the bundle (cheap); ``load`` opens the session."""
        super().__init__(name)
        self.bundle = Path(bundle)
        self.info: BundleInfo = read_bundle(self.bundle)
        self.kind: Any = choose_kind(self.info)
        self.tensors = TensorKind(self.info)
        self.post = Postprocessor(self.info, self.kind)
        self.requested_threads = threads
        self.spin = spin  # onnxruntime's idle threads spin: only on cores of its own
        self.batching = batching or BatchConfig()
        self.threads: ThreadChoice | None = None
        self.engine: Engine | None = None
        self.batcher: Batcher | None = None
        self.warmed_up = False
        self.ready = False

    def load(self) -> bool:
        """Open the session with the cgroup's thread count, run a warm-up, then turn ready."""
        self.threads = intra_op_threads(self.requested_threads)
        log.info("serving %s: %s model, %s, onnxruntime intra-op threads %d (from %s)%s",
                 self.name, self.kind.name, self.describe_variant(), self.threads.threads,
                 self.threads.source, ", spinning" if self.spin else "")
        start = time.perf_counter()
        self.engine = open_engine(self.info, self.kind, self.threads.threads, self.spin)
        self.batcher = Batcher(self.engine.run, self.batching)
        self.engine.run([self.warm_up_item()])
        self.warmed_up = True
        log.info("serving %s: loaded and warmed up in %.2f s", self.name,
                 time.perf_counter() - start)
        self.ready = True
        return self.ready

    def describe_variant(self) -> str:
        """Which graphs are served."""
        if self.kind.name == "generation":
            return f"generation variant {self.kind.variant['name']}"
        return f"variant {self.info.manifest.get('recommended')} ({self.info.model_file})"

    def warm_up_item(self) -> Item:
        """A small request of the kind the model takes."""
        if self.kind.name in ("text", "fasttext"):
            return self.kind.parse("warm up")
        if self.kind.name == "tabular":
            return self.kind.parse({})
        if self.kind.name == "generation":
            return self.kind.parse({"input_ids": [1, 2, 3], "parameters": {"max_new_tokens": 2}})
        feed = {}
        for spec in self.info.inputs:
            shape = [d if isinstance(d, int) else 1 for d in spec.shape]
            feed[spec.name] = np.zeros(shape, dtype=spec.dtype).tolist()
        return self.tensors.check(feed, batched=True)

    def stop(self) -> None:
        """Finish the running batch and release the inference thread."""
        if self.batcher is not None:
            self.batcher.close()
        self.ready = False

    def validate(self, payload: Any) -> Any:
        """Requests are checked in ``preprocess``; KServe's own check does not apply."""
        return payload

    def _parse(self, instance: Any) -> Item:
        if (self.kind.name != "generation" and isinstance(instance, Mapping) and instance
                and set(instance) <= set(self.tensors.names)):
            return self.tensors.parse(instance)
        return self.kind.parse(instance)

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Parsed:
        """Decode a v1 body (``instances``) or a v2 request into items."""
        request_id = (headers or {}).get("x-request-id") or uuid.uuid4().hex
        if isinstance(payload, InferRequest):
            try:
                arrays = {i.name: i.as_numpy() for i in payload.inputs}
            except (ValueError, TypeError) as e:
                raise RequestError(f"inputs do not match their shapes or datatypes ({e})") from e
            if not arrays:
                raise RequestError("the request has no inputs")
            raw = self.kind.name != "generation" and set(arrays) <= set(self.tensors.names)
            items: list[Item] | None = None if raw else self.kind.parse_v2(arrays)
            if items is None:
                items = [self.tensors.check(arrays, batched=True)]
            return Parsed(protocol="v2", items=items, request_id=payload.id or request_id)
        if isinstance(payload, bytes | str):  # a JSON type KServe does not list, e.g. charset
            try:
                payload = json.loads(payload)
            except (ValueError, UnicodeDecodeError) as e:
                raise RequestError(f"the body is not valid JSON ({e})") from e
        if not isinstance(payload, Mapping):
            raise RequestError("the body must be a JSON object with \"instances\"")
        instances = payload.get("instances", payload.get("inputs"))
        if not isinstance(instances, list) or not instances:
            raise RequestError("the body needs \"instances\": a non-empty list")
        if len(instances) > MAX_INSTANCES:
            raise RequestError(f"{len(instances)} instances, over the limit of {MAX_INSTANCES}",
                               413)
        items = []  # the v1 items
        for index, instance in enumerate(instances):
            try:
                items.append(self._parse(instance))
            except RequestError as e:
                raise RequestError(f"instances[{index}]: {e}", e.status) from e
        return Parsed(protocol="v1", items=items, request_id=request_id)

    async def predict(self, payload: Parsed, headers: dict[str, str] | None = None) -> Answered:
        """Queue the items for the batcher; inference runs off the event loop."""
        if self.batcher is None:
            raise RequestError("the model is not loaded", 503)
        results = await self.batcher.submit(payload.items)
        return Answered(parsed=payload, results=results)

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        """Answer in the request's protocol, and record predicted classes and scores."""
        outputs = _stack(result.results, getattr(self.kind, "pad_id", 0))
        observe_predictions(*self.post.observed(outputs))
        if result.parsed.protocol == "v1":
            return {"predictions": self.post.v1(outputs)}
        tensors = []
        for name, value in self.post.v2(outputs).items():
            array = np.asarray(value)
            datatype = V2_DATATYPES.get(array.dtype.name, "BYTES" if array.dtype.kind in "OUS"
                                        else "FP32")
            if datatype == "BYTES":
                array = np.asarray([str(v) for v in array.reshape(-1)], dtype=object).reshape(
                    array.shape)
            output = InferOutput(name=name, shape=list(array.shape), datatype=datatype)
            output.set_data_from_numpy(array, binary_data=False)
            tensors.append(output)
        return InferResponse(response_id=result.parsed.request_id, model_name=self.name,
                             infer_outputs=tensors)

    def get_input_types(self) -> list[dict[str, Any]]:
        """The graph inputs as v2 metadata tensors (dynamic axes as -1)."""
        return [_metadata(t.name, t.dtype, t.shape) for t in self.info.inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        """The graph outputs as v2 metadata tensors."""
        return [_metadata(t.name, t.dtype, t.shape) for t in self.info.outputs]

    def schema(self) -> dict[str, Any]:
        """What the metadata endpoint adds: kind, task, labels, request forms, thread count."""
        return {
            "kind": self.kind.name,
            "task": self.info.task,
            "labels": self.info.id2label,
            "answer": self.post.mode,
            "request": self.kind.describe(),
            "input_schema": self.info.input_schema,
            "threads": self.threads.threads if self.threads else None,
            "spin": self.spin,
            "batching": dataclasses.asdict(self.batching),
        }


def _metadata(name: str, dtype: str, shape: Sequence[int | str]) -> dict[str, Any]:
    return {"name": name, "datatype": V2_DATATYPES.get(dtype, dtype.upper()),
            "shape": [d if isinstance(d, int) else -1 for d in shape]}
