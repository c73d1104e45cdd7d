"""Dynamic batching inside the server: max batch, max wait, length buckets, bounded queue.

Requests' items wait in one queue. The batching task takes the first, then whatever else is
queued (under load, waiting up to ``max_wait`` for more while the batch is short; a lone
request on an idle server does not wait), groups the items by
key (for text: the padded length rounded up to a power of two, so short requests are not
padded to the longest), and runs each group in the inference thread, off the event loop.
Admission is bounded: beyond ``max_queue`` waiting rows a request is refused at once
(``QueueFull``, answered 503 with Retry-After) instead of waiting without bound.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import metrics
from .inputs import Item


class QueueFull(RuntimeError):
    """The queue holds ``max_queue`` rows; ``retry_after`` is a whole number of seconds."""

    def __init__(self, depth: int, retry_after: int) -> None:
        """Say how full the queue is."""
        super().__init__(f"server busy: {depth} rows queued; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """Batching limits, validated at construction."""

    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_queue: int = 256
    wait_when_idle: bool = False  # also hold a lone request up to max_wait_ms for company

    def __post_init__(self) -> None:
        """Refuse limits that cannot work."""
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {self.max_queue}")


@dataclass
class _Pending:
    item: Item
    future: asyncio.Future[Any]


class Batcher:
    """Collects items from concurrent requests and runs them in batches."""

    def __init__(self, run: Callable[[Sequence[Item]], list[Any]], config: BatchConfig) -> None:
        """``run`` takes items of one key and returns one result per item."""
        self.run = run
        self.config = config
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.depth = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._seconds_per_row = 0.01
        self._busy = False  # the last batch found company: worth waiting for more

    async def submit(self, items: Sequence[Item]) -> list[Any]:
        """Queue a request's items; their results in order. QueueFull when over the bound."""
        rows = sum(i.rows for i in items)
        if self.depth + rows > self.config.max_queue:
            wait = self.depth * self._seconds_per_row
            metrics.REJECTED.labels(reason="queue_full").inc()
            raise QueueFull(self.depth, max(1, math.ceil(wait)))
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop())
        assert self._queue is not None  # created with the task just above
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        self.depth += rows
        metrics.QUEUE_DEPTH.set(self.depth)
        for p in pending:
            self._queue.put_nowait(p)
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        finally:
            self.depth -= rows
            metrics.QUEUE_DEPTH.set(self.depth)

    async def _collect(self, queue: asyncio.Queue[_Pending]) -> list[_Pending]:
        batch = [await queue.get()]
        rows = batch[0].item.rows
        # Wait for more only under load: a lone request on an idle server runs at once.
        waits = self._busy or not queue.empty() or self.config.wait_when_idle
        wait = self.config.max_wait_ms / 1000 if waits else 0.0
        deadline = time.monotonic() + wait
        while rows < self.config.max_batch:
            if queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            else:
                batch.append(queue.get_nowait())
            rows += batch[-1].item.rows
        self._busy = len(batch) > 1
        return batch

    def _groups(self, batch: list[_Pending]) -> list[list[_Pending]]:
        groups: dict[Any, list[list[_Pending]]] = {}
        for p in batch:
            chunks = groups.setdefault(p.item.key, [[]])
            if sum(q.item.rows for q in chunks[-1]) + p.item.rows > self.config.max_batch:
                chunks.append([])
            chunks[-1].append(p)
        return [chunk for chunks in groups.values() for chunk in chunks if chunk]

    async def _loop(self) -> None:
        assert self._queue is not None  # set before the task starts
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            for group in self._groups(batch):
                live = [p for p in group if not p.future.done()]  # a client may have gone
                if not live:
                    continue
                rows = sum(p.item.rows for p in live)
                metrics.BATCH_SIZE.observe(rows)
                start = time.perf_counter()
                try:
                    results = await loop.run_in_executor(
                        self.executor, self.run, [p.item for p in live]
                    )
                except Exception as e:  # noqa: BLE001  the batch's requests get the error
                    for p in live:
                        if not p.future.done():
                            p.future.set_exception(e)
                    continue
                seconds = time.perf_counter() - start
                metrics.INFERENCE_LATENCY.observe(seconds)
                self._seconds_per_row = 0.8 * self._seconds_per_row + 0.2 * seconds / rows
                for p, result in zip(live, results, strict=True):
                    if not p.future.done():
                        p.future.set_result(result)

    def close(self) -> None:
        """Stop the batching task and the inference thread (after the running batch)."""
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=True)
