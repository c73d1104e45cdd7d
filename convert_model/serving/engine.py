"""Inference over one batch: the recommended variant's onnxruntime session.

A kind that runs something else (generation) brings its own engine through ``open_engine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .bundle_info import BundleInfo
from .inputs import Item


class Engine(Protocol):
    """Runs items that share a batching key; one output dict per item."""

    def run(self, items: Sequence[Item]) -> list[dict[str, np.ndarray]]:
        """Run the items as one batch."""
        ...


def session_options(threads: int, spin: bool = False) -> Any:
    """Session options: ``threads`` intra-op threads, one inter-op, spinning only if asked.

    Spinning is off by default, as in the conversion's measurements: a spinning pool that
    loses its core on a shared node stalls for a scheduler period, and two spinning pools
    on the same cores slow each other. On cores the server has to itself (``--spin``), idle
    threads that spin pick up the next parallel region sooner: lower latency at batch 1.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class GraphEngine:
    """One onnxruntime session; a batch is the kind's collated feed, split back by rows."""

    def __init__(self, path: Path, kind: Any, threads: int, spin: bool = False) -> None:
        """Open the session on the CPU provider."""
        import onnxruntime as ort

        self.path = path
        self.kind = kind
        self.session = ort.InferenceSession(
            str(path), sess_options=session_options(threads, spin),
            providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run_feed(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one feed; outputs by name."""
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    def run(self, items: Sequence[Item]) -> list[dict[str, np.ndarray]]:
        """Collate, run, and give each item its rows of every batched output."""
        outputs = self.run_feed(self.kind.collate(items))
        total = sum(i.rows for i in items)
        results: list[dict[str, np.ndarray]] = [{} for _ in items]
        for name, value in outputs.items():
            batched = value.ndim > 0 and value.shape[0] == total
            start = 0
            for result, item in zip(results, items, strict=True):
                result[name] = value[start:start + item.rows] if batched else value
                start += item.rows
        return results


def open_engine(info: BundleInfo, kind: Any, threads: int, spin: bool = False) -> Engine:
    """The kind's own engine when it has one, else a session on the recommended variant.

    ``spin`` applies to the recommended variant's session; a generation loop's sessions
    keep their own options.
    """
    own = getattr(kind, "open_engine", None)
    if own is not None:
        engine: Engine = own(threads)
        return engine
    return GraphEngine(info.folder / info.model_file, kind, threads, spin)
