"""HTTP around KServe's routes: body limits, JSON errors, readiness, metadata with the schema.

``install(app, models, max_body_bytes)`` runs before KServe registers its own routes, so the
routes here win where paths are equal. Every refusal is a 4xx (or 503) with a one-line
JSON body ``{"error": ...}``; none stops the server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import metrics
from .batcher import QueueFull
from .inputs import RequestError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON_TYPES = (b"application/json", b"application/cloudevents+json")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def error_body(message: str) -> bytes:
    """The one-line JSON error body."""
    return json.dumps({"error": _one_line(message)}).encode()


def _protocol(path: str) -> str | None:
    if path.startswith("/v1/"):
        return "v1"
    if path.startswith("/v2/"):
        return "v2"
    return None


def _is_inference(method: str, path: str) -> bool:
    return method == "POST" and (path.endswith(":predict") or path.endswith("/infer")
                                 or path.endswith(":explain"))


class Guard:
    """ASGI middleware: admission, JSON content type and body size; latency per protocol.

    At most ``max_in_flight`` inference requests are inside the server at once; one more is
    answered 503 with Retry-After before its body is read, so an overloaded event loop sheds
    load cheaply instead of queueing it without bound.
    """

    def __init__(self, app: Any, max_body_bytes: int, max_in_flight: int) -> None:
        """Wrap ``app``."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def _refuse(self, send: Send, status: int, message: str,
                      headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        body = error_body(message)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, time and pass on one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        protocol = _protocol(scope["path"])
        status = {"code": 500}
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        admitted = False
        try:
            if _is_inference(scope["method"], scope["path"]):
                if self.in_flight >= self.max_in_flight:
                    metrics.REJECTED.labels(reason="queue_full").inc()
                    await self._refuse(timed_send, 503, f"server busy: {self.in_flight} requests "
                                       "in flight; retry after 1 s", [(b"retry-after", b"1")])
                    return
                self.in_flight += 1
                admitted = True
                checked = await self._check(scope, receive, timed_send)
                if checked is None:
                    return
                receive = checked
            await self.app(scope, receive, timed_send)
        finally:
            if admitted:
                self.in_flight -= 1

            if protocol is not None:
                metrics.REQUEST_LATENCY.labels(protocol=protocol, code=str(status["code"])) \
                    .observe(time.perf_counter() - start)

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        headers = dict(scope["headers"])
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media not in JSON_TYPES:
            metrics.REJECTED.labels(reason="content_type").inc()
            shown = media.decode("latin-1") or "none"
            await self._refuse(send, 415, f"Content-Type must be application/json, got {shown}")
            return None
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            metrics.REJECTED.labels(reason="too_large").inc()
            await self._refuse(send, 413, f"body of {int(declared)} bytes is over the limit of "
                               f"{self.max_body_bytes}")
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                metrics.REJECTED.labels(reason="too_large").inc()
                await self._refuse(send, 413, f"body over the limit of {self.max_body_bytes} "
                                   "bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


async def _request_error(_: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status", 400)
    metrics.REJECTED.labels(reason=str(status)).inc()
    return JSONResponse(status_code=status, content={"error": _one_line(str(exc))})


async def _queue_full(_: Request, exc: Exception) -> JSONResponse:
    retry = getattr(exc, "retry_after", 1)
    return JSONResponse(status_code=503, content={"error": _one_line(str(exc))},
                        headers={"Retry-After": str(retry)})


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = f"malformed request: {first.get('msg', str(exc))}" + (f" at {where}" if where else "")
    metrics.REJECTED.labels(reason="malformed").inc()
    return JSONResponse(status_code=400, content={"error": _one_line(message)})


def install(app: FastAPI, models: Sequence[Any], max_body_bytes: int,
            max_in_flight: int) -> None:
    """Add the guard, the error handlers, and the readiness and metadata routes to ``app``."""
    app.add_middleware(Guard, max_body_bytes=max_body_bytes, max_in_flight=max_in_flight)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(QueueFull, _queue_full)
    app.add_exception_handler(RequestValidationError, _validation)
    by_name = {m.name: m for m in models}

    async def ready() -> JSONResponse:
        waiting = [m.name for m in models if not m.ready]
        if waiting:
            return JSONResponse(status_code=503, content={"error": f"not ready: {waiting}"})
        return JSONResponse(content={"ready": True})

    async def metadata(model_name: str) -> JSONResponse:
        model = by_name.get(model_name)
        if model is None:
            return JSONResponse(status_code=404, content={
                "error": f"Model with name {model_name} does not exist."})
        return JSONResponse(content={
            "name": model.name, "platform": "onnxruntime", "versions": None,
            "inputs": model.get_input_types(), "outputs": model.get_output_types(),
            "parameters": model.schema(),
        })

    app.add_api_route("/v2/health/ready", ready, methods=["GET"])
    app.add_api_route("/v2/models/{model_name}", metadata, methods=["GET"])
