"""Names every stage agrees on: targets, precisions, devices, and the baseline variant."""

from __future__ import annotations

TARGETS = ("onnx",)
VARIANT_PRECISIONS = ("fp32", "int8", "fp16")
"""What a variant's weights and activations are."""
PRECISIONS = ("auto", *VARIANT_PRECISIONS)
"""What ``--precision`` takes: auto builds every precision and recommends one."""
VARIANT_DEVICES = ("cpu", "cuda")
"""What a variant can be built for."""
DEVICES = ("cpu",)
"""What ``--device`` takes: the device the recommended variant is timed and served on."""
BASELINE = "fp32"
"""The plain fp32 export: every variant is judged against the original and must beat it."""
REFERENCE_PREFIX = "reference:"
