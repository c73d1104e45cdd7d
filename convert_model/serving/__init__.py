"""The bundle's KServe predictor: numpy, onnxruntime, tokenizers and kserve only.

This package is copied into every bundle as ``serving/`` and is exactly what a container
runs (``python -m serving --bundle /mnt/models``). It imports nothing of convert-model, torch
or transformers; generative bundles reach their generation loop through the bundle's own
``runtime/``. A test blocks those imports and loads it.

Modules: ``threads`` (intra-op threads from the cgroup), ``inputs`` (pre-processing, one
entry per input kind the manifest names), ``outputs`` (post-processing per task),
``engine`` (onnxruntime session or generation loop), ``batcher`` (dynamic batching, bounded
queue), ``model`` (the ``kserve.Model``), ``http`` (limits, errors, readiness, metrics
routes), ``metrics`` (Prometheus), ``__main__`` (the command line).
"""

from __future__ import annotations

__all__: list[str] = []
