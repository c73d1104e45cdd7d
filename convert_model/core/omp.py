"""OpenMP's wait policy, set when the library is imported so every entry point times alike.

PyTorch's idle OpenMP threads otherwise spin, and on a busy machine a spinning thread that
loses its core stalls the original's calls for a scheduler period, swamping its measured
latency (onnxruntime's spinning is off for the same reason). The OpenMP runtime reads the
variable once, when torch loads, so it is set on import of ``convert_model``, before any
stage imports torch; what was in effect is recorded with every measurement.
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"
_STATE: dict[str, object] = {}


def apply_wait_policy() -> None:
    """Set ``OMP_WAIT_POLICY`` unless the user set it; note whether torch had loaded already."""
    if _STATE:
        return
    _STATE["torch_loaded_first"] = "torch" in sys.modules
    _STATE["user_set"] = "OMP_WAIT_POLICY" in os.environ
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def effective_wait_policy() -> str | None:
    """The policy PyTorch's threads run under, as the manifest records it.

    ``None`` when it is unset; a policy set only after torch had loaded did not take
    effect, and says so.
    """
    value = os.environ.get("OMP_WAIT_POLICY")
    if value is not None and _STATE.get("torch_loaded_first") and not _STATE.get("user_set"):
        return f"{value} (not in effect: torch was imported before convert_model)"
    return value
