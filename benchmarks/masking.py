"""Which outputs have a sequence axis that an attention-mask input pads, and their real rows.

Serving never reads a padded position, so parity on token-level outputs counts real
positions only. Rules:
- A mask input is ``attention_mask``, or any 2-D integer or boolean input whose name
  contains ``mask``; ``attention_mask`` is tried first.
- An output is masked by the first mask whose shape equals the output's first two axes
  (batch, sequence). Nonzero mask values are real positions.
- The real rows of a masked output are its ``[batch, sequence]`` positions where the mask is
  set, so a row is one real token (``last_hidden_state[b, t]``, ``logits[b, t]``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PREFERRED_MASK = "attention_mask"


def mask_inputs(inputs: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The inputs that are attention masks, by name, as boolean arrays (preferred one first)."""
    if not inputs:
        return {}
    found: dict[str, np.ndarray] = {}
    names = sorted(inputs, key=lambda n: n != PREFERRED_MASK)
    for name in names:
        value = np.asarray(inputs[name])
        is_int = np.issubdtype(value.dtype, np.integer) or value.dtype == np.bool_
        if value.ndim == 2 and is_int and (name == PREFERRED_MASK or "mask" in name.lower()):
            found[name] = value != 0
    return found


def mask_for(output: np.ndarray, masks: Mapping[str, np.ndarray]) -> tuple[str, np.ndarray] | None:
    """The mask whose shape is ``output``'s first two axes, as (input name, mask), else None."""
    if output.ndim < 2:
        return None
    for name, mask in masks.items():
        if mask.shape == output.shape[:2]:
            return name, mask
    return None


def masked_outputs(
    inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> dict[str, str]:
    """Output name → the mask input it is compared under, for the outputs that have one."""
    masks = mask_inputs(inputs)
    found = {}
    for name, value in outputs.items():
        hit = mask_for(np.asarray(value), masks)
        if hit is not None:
            found[name] = hit[0]
    return found
