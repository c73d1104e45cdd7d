"""Keep third-party progress prints, warnings and log lines off the user's terminal."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

_NOISY_LOGGERS = (
    "transformers",
    "optimum",
    "torch.onnx",
    "torch.export",
    "torch._dynamo",
    "onnxruntime",
    "fusion_embedlayer",
    "fusion_attention",
    "onnx_model",
    "onnx_model_bert",
    "fusion_utils",
    "fusion_skiplayernorm",
    "fusion_base",
    "float16",
    "optimizer",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout prints, Python warnings and log records below ERROR, then restore them.

    The root logger gets a NullHandler for the duration: a library calling
    ``logging.warning`` would otherwise install a stderr handler on the root for good.
    """
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in _NOISY_LOGGERS)]
    levels = [logger.level for logger in loggers]
    null = logging.NullHandler()
    root = loggers[0]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        root.addHandler(null)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            root.removeHandler(null)
