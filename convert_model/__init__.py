"""convert-model: research checkpoints in, validated ONNX bundles out.

The Python API mirrors the command line::

    from convert_model import convert
    result = convert("path/to/checkpoint", out="bundle")
    print(result.manifest.recommended, result.passed)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convert_model.core.omp import apply_wait_policy

apply_wait_policy()  # before any stage imports torch: the CLI and the API time alike

from convert_model.core.errors import (  # noqa: E402  after the wait policy, on purpose
    BundleError,
    CheckpointError,
    ConvertModelError,
    ExportError,
    OptimizationError,
    ParityError,
    UsageError,
)

if TYPE_CHECKING:
    from convert_model.bundle.verify import VerifyResult
    from convert_model.options import ConvertOptions
    from convert_model.pipeline import ConvertResult

__all__ = [
    "BundleError",
    "CheckpointError",
    "ConvertModelError",
    "ConvertOptions",
    "ConvertResult",
    "ExportError",
    "OptimizationError",
    "ParityError",
    "UsageError",
    "VerifyResult",
    "convert",
    "verify",
]


def convert(checkpoint: Any, options: ConvertOptions | None = None, **kwargs: Any) -> ConvertResult:
    """Convert a checkpoint to an ONNX bundle; see ``convert_model.pipeline.convert``."""
    from convert_model.pipeline import convert as run

    return run(checkpoint, options, **kwargs)


def verify(out: Any, key: bytes | None = None) -> VerifyResult:
    """Re-check a bundle; see ``convert_model.bundle.verify.verify``."""
    from convert_model.bundle.verify import verify as run

    return run(out, key)


def __getattr__(name: str) -> Any:
    # Keeps `import convert_model` (and so `convert-model --help`) free of torch.
    if name == "ConvertOptions":
        from convert_model.options import ConvertOptions

        return ConvertOptions
    if name == "ConvertResult":
        from convert_model.pipeline import ConvertResult

        return ConvertResult
    if name == "VerifyResult":
        from convert_model.bundle.verify import VerifyResult

        return VerifyResult
    raise AttributeError(name)
