"""``python -m serving``: start a KServe model server on the bundle this package lies in.

What a container runs (``python -m serving --bundle /mnt/models``) and what
``convert-model serve OUT`` runs locally. Settings come from flags or the environment
(``MODEL_NAME``, ``PORT``, ``SERVING_THREADS``, ``SERVING_MAX_BATCH``,
``SERVING_MAX_WAIT_MS``, ``SERVING_MAX_QUEUE``, ``SERVING_MAX_BODY_BYTES``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def listening_on(host: str) -> Iterator[None]:
    """KServe's REST server binds 0.0.0.0 unconditionally; bind ``host`` while it runs."""
    import kserve.model_server as model_server

    original: Any = model_server.RESTServer

    class BoundServer(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    model_server.RESTServer = BoundServer  # type: ignore[misc]
    try:
        yield
    finally:
        model_server.RESTServer = original  # type: ignore[misc]


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The flags; defaults from the environment."""
    p = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    p.add_argument("--bundle", type=Path, default=Path(__file__).resolve().parent.parent,
                   help="bundle folder (default: the folder holding serving/)")
    p.add_argument("--name", default=os.environ.get("MODEL_NAME", "model"),
                   help="model name in the URLs (default: $MODEL_NAME or 'model')")
    p.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"),
                   help="address to listen on (default: all, as a container needs)")
    p.add_argument("--port", type=int, default=_env_int("PORT", 8080))
    p.add_argument("--threads", type=int, default=_env_int("SERVING_THREADS", None),
                   help="onnxruntime intra-op threads (default: the cgroup CPU quota)")
    p.add_argument("--max-batch", type=int, default=_env_int("SERVING_MAX_BATCH", 32))
    p.add_argument("--max-wait-ms", type=float,
                   default=float(os.environ.get("SERVING_MAX_WAIT_MS") or 2.0))
    p.add_argument("--max-queue", type=int, default=_env_int("SERVING_MAX_QUEUE", 256))
    p.add_argument("--wait-when-idle", action="store_true",
                   default=bool(os.environ.get("SERVING_WAIT_WHEN_IDLE")),
                   help="hold even a lone request up to --max-wait-ms for a batch")
    p.add_argument("--spin", action="store_true", default=bool(os.environ.get("SERVING_SPIN")),
                   help="let onnxruntime's idle threads spin (lower latency on cores the "
                   "server has to itself; never on shared ones)")
    p.add_argument("--max-body-bytes", type=int,
                   default=_env_int("SERVING_MAX_BODY_BYTES", 8 * 1024 * 1024))
    p.add_argument("--access-log", action="store_true", help="log every request")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Build the model, start loading it, and serve until SIGTERM (in-flight requests finish)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported; it gets no flags of ours
    import kserve
    from kserve.model_repository import ModelRepository
    from kserve.model_server import app

    from .batcher import BatchConfig
    from .http import install
    from .model import BundleModel

    batching = BatchConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                           max_queue=args.max_queue, wait_when_idle=args.wait_when_idle)
    model = BundleModel(args.name, args.bundle, threads=args.threads, batching=batching,
                        spin=args.spin)
    repository = ModelRepository()
    repository.update(model)
    install(app, [model], args.max_body_bytes, max_in_flight=args.max_queue)
    server = kserve.ModelServer(http_port=args.port, enable_grpc=False, workers=1,
                                registered_models=repository, enable_latency_logging=False)
    if not args.access_log:
        for name in ("uvicorn.access", "kserve.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # Load beside the starting server: /v2/health/ready answers 503 until the warm-up ran.
    threading.Thread(target=model.load, name="load", daemon=True).start()
    with listening_on(args.host):
        server.start([])


if __name__ == "__main__":
    main()
