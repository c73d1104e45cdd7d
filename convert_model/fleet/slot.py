"""One timing slot per node: at most one fleet conversion on a node measures latency at once.

The slot is a small named actor pinned to its node (no CPU reserved), created on first use
by the first task that reaches its timing stage there. A task holds the slot while its
latency stages run (``convert_model.core.timing_slot`` marks them in the pipeline); a holder
whose process died (SIGKILL, out of memory) is noticed by its pid and its slot freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from convert_model.bundle.staging import pid_alive

ACTOR_PREFIX = "convert-model-timing-"
NAMESPACE = "convert-model-fleet"
_POLL_S = 0.05


class TimingSlot:
    """An asyncio actor holding one node's slot: who holds it, and a wait for the rest."""

    def __init__(self) -> None:
        self._holder: int | None = None

    async def acquire(self, pid: int) -> float:
        """Wait until the slot is free (or its holder died), take it; return seconds waited."""
        start = time.monotonic()
        while self._holder not in (None, pid) and pid_alive(self._holder):  # type: ignore[arg-type]
            await asyncio.sleep(_POLL_S)
        self._holder = pid
        return time.monotonic() - start

    async def release(self, pid: int) -> None:
        """Give the slot back (only its holder can)."""
        if self._holder == pid:
            self._holder = None

    async def holder(self) -> int | None:
        """The pid holding the slot, if any."""
        return self._holder


def actor_name(run_id: str, node_id: str) -> str:
    """The slot actor's name for one run and node."""
    return f"{ACTOR_PREFIX}{run_id}-{node_id}"


def _slot_actor(run_id: str) -> Any:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node_id = ray.get_runtime_context().get_node_id()
    return (
        ray.remote(TimingSlot)
        .options(
            name=actor_name(run_id, node_id),
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached",  # outlives the task that made it; the driver removes it
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        )
        .remote()
    )


class NodeSlotGuard:
    """A ``timing_slot`` guard for a Ray task: each use holds this node's slot.

    ``waited_s`` adds up how long the task waited for the slot (another model was timing);
    ``windows`` holds each (taken, given back) time, wall clock, for the report.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.waited_s = 0.0
        self.windows: list[tuple[float, float]] = []

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        """Hold this node's slot for the block."""
        import ray

        actor = _slot_actor(self.run_id)
        pid = os.getpid()
        self.waited_s += ray.get(actor.acquire.remote(pid))
        taken = time.time()
        try:
            yield
        finally:
            self.windows.append((taken, time.time()))
            ray.get(actor.release.remote(pid))


def remove_slots(run_id: str) -> None:
    """Kill this run's slot actors (the driver calls this when the fleet ends)."""
    import ray

    prefix = f"{ACTOR_PREFIX}{run_id}-"
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == NAMESPACE and entry["name"].startswith(prefix):
            with contextlib.suppress(ValueError):  # already gone
                ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE))
