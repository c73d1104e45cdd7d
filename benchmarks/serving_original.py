"""The original model served the way Lift Wing serves it today, for the load benchmark.

A ``kserve.Model`` subclass around the PyTorch/transformers sequence classifier: tokenize
in ``preprocess``, a synchronous ``predict`` (it runs on KServe's event loop, as the
platform's servers do), ``torch.set_num_threads`` for the CPU limit. Run as a script::

    python benchmarks/serving_original.py --folder CHECKPOINT --port 8081 --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    """Serve the checkpoint with KServe until SIGTERM."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--folder", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--name", default="original")
    args = p.parse_args()
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
    import kserve
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    class OriginalModel(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.ready = False

        def load(self) -> bool:
            torch.set_num_threads(args.threads)
            self.tokenizer = AutoTokenizer.from_pretrained(args.folder)
            self.model = AutoModelForSequenceClassification.from_pretrained(args.folder).eval()
            self.labels = self.model.config.id2label
            self.ready = True
            return True

        def preprocess(self, payload: Any, headers: Any = None) -> Any:
            pairs = [i if isinstance(i, list) else [i, None] for i in payload["instances"]]
            return self.tokenizer([a for a, _ in pairs],
                                  [b for _, b in pairs] if all(b for _, b in pairs) else None,
                                  truncation=True, max_length=128, padding=True,
                                  return_tensors="pt")

        def predict(self, inputs: Any, headers: Any = None) -> Any:
            with torch.inference_mode():
                probabilities = torch.softmax(self.model(**inputs).logits, -1)
            return {"predictions": [
                {"label": self.labels[int(p.argmax())],
                 "probabilities": {self.labels[i]: float(v) for i, v in enumerate(p)}}
                for p in probabilities
            ]}

    model = OriginalModel(args.name)
    model.load()
    kserve.ModelServer(http_port=args.port, enable_grpc=False, workers=1,
                       enable_latency_logging=False).start([model])


if __name__ == "__main__":
    main()
