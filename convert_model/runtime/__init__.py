"""Generation over a bundle's onnxruntime sessions, with numpy and onnxruntime only.

This package is copied verbatim into every generative bundle as ``runtime/``, so serving
code needs neither torch nor this project::

    import sys
    sys.path.insert(0, BUNDLE)
    from runtime import Generator

    generator = Generator(BUNDLE)
    sequences = generator.generate(input_ids, attention_mask, max_new_tokens=32, num_beams=4)

``fasttext_text`` tokenises and hashes text for a fastText bundle's graph (numpy only)::

    from runtime.fasttext_text import FastTextText, top_k
    text = FastTextText.load(BUNDLE)   # fasttext_tokenizer.json
    ids = text.batch(["some text", "more text"])   # the graph's "ids" input

Its modules import only the standard library, numpy, onnxruntime and each other (relatively);
a test enforces it.
"""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use, so that the tokenisers (``fasttext_text``) import without onnxruntime.
_LAZY = {
    "Generator": "generate",
    "DECODER_ONLY": "graphs",
    "ENCODER_DECODER": "graphs",
    "GraphError": "graphs",
    "KeyValueCache": "graphs",
    "SearchPlan": "search",
    "GenerationSettings": "settings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)


__all__ = [
    "DECODER_ONLY",
    "ENCODER_DECODER",
    "GenerationSettings",
    "Generator",
    "GraphError",
    "KeyValueCache",
    "SearchPlan",
]
