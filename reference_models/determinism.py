"""Running a build so that the same seed gives byte-identical weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic(seed: int, *, threads: int | None = 1) -> Iterator[None]:
    """Seed torch, use deterministic kernels and a fixed thread count; restore all three on exit.

    One thread by default: a CPU reduction split over more threads may sum in a
    different order, and the weights would differ in their last bits. A build
    that needs the speed passes `threads=None` to keep the current count
    (readability does, for a forward pass whose results were checked to be the
    same on one and two threads).
    """
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
    # fork_rng puts torch's global generator back as it was when the build ends.
    with torch.random.fork_rng(devices=[]):
        try:
            torch.manual_seed(seed)
            torch.use_deterministic_algorithms(True)
            if threads is not None:
                torch.set_num_threads(threads)
            yield
        finally:
            torch.set_num_threads(threads_before)
            torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_only_before)
