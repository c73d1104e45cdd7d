"""Post-processing: graph outputs to answers, per task.

Classifiers answer labels (``id2label``) with probabilities; regressors a score; generative
models sequences and text; anything else its outputs by name. Raw outputs always come along,
so a client can compare them with the bundle's own onnxruntime outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .bundle_info import BundleInfo


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, returned as float32."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic, float32."""
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


class Postprocessor:
    """Turns one request's outputs (rows stacked) into v1 predictions and v2 tensors."""

    def __init__(self, info: BundleInfo, kind: Any) -> None:
        """Decide the answer's form from the manifest and config.json."""
        self.kind = kind
        self.labels = info.id2label
        outputs = {t.name: t for t in info.outputs}
        logits = outputs.get("logits")
        problem = info.config.get("problem_type")
        self.mode = "outputs"
        if kind.name == "generation":
            self.mode = "generation"
        elif kind.name == "fasttext":  # probabilities as fastText's predict reports them
            self.mode = "fasttext"
            self.labels = dict(enumerate(kind.labels))
        elif "label" in outputs and "probabilities" in outputs:
            self.mode = "tabular-classifier"
        elif logits is not None and logits.rank == 2 and problem == "regression":
            self.mode = "regression"
        elif (logits is not None and logits.rank == 2 and self.labels
              and logits.shape[-1] in (len(self.labels), "num_labels")):
            self.mode = "multi-label" if problem == "multi_label_classification" else "classifier"

    def _label(self, index: int) -> Any:
        return self.labels.get(index, index) if self.labels else index

    def extras(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Derived tensors: ``label``, ``probabilities``, ``score``, ``text``."""
        if self.mode in ("classifier", "multi-label"):
            logits = outputs["logits"]
            probabilities = softmax(logits) if self.mode == "classifier" else sigmoid(logits)
            labels = np.asarray([str(self._label(int(i))) for i in probabilities.argmax(-1)],
                                dtype=object)
            return {"label": labels, "probabilities": probabilities,
                    "score": probabilities.max(-1)}
        if self.mode == "fasttext":
            probabilities = outputs["probabilities"]
            labels = np.asarray([str(self._label(int(i))) for i in probabilities.argmax(-1)],
                                dtype=object)
            return {"label": labels, "score": probabilities.max(-1).astype(np.float32)}
        if self.mode == "tabular-classifier":
            probabilities = outputs["probabilities"]
            return {"score": probabilities.max(-1).astype(np.float32)}
        if self.mode == "regression":
            return {"score": outputs["logits"][:, 0].astype(np.float32)}
        if self.mode == "generation":
            texts = [self.kind.decode(row) for row in outputs["sequences"]]
            if all(t is not None for t in texts):
                return {"text": np.asarray(texts, dtype=object)}
        return {}

    def v1(self, outputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """One prediction object per row."""
        extras = self.extras(outputs)
        rows = len(next(iter(outputs.values())))
        predictions = []
        for r in range(rows):
            answer: dict[str, Any] = {n: v[r].tolist() for n, v in outputs.items()}
            for name, value in extras.items():
                cell = value[r]
                answer[name] = cell.tolist() if isinstance(cell, np.ndarray) else (
                    cell.item() if isinstance(cell, np.generic) else cell)
            if self.mode in ("classifier", "multi-label", "fasttext") and self.labels:
                source = extras if "probabilities" in extras else outputs
                row = np.asarray(source["probabilities"])[r]
                answer["probabilities"] = {
                    str(self._label(i)): float(p) for i, p in enumerate(row)
                }
            predictions.append(answer)
        return predictions

    def v2(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output tensor, then the derived ones."""
        return {**outputs, **self.extras(outputs)}

    def observed(self, outputs: Mapping[str, np.ndarray]) -> tuple[list[str], list[float]]:
        """Predicted classes and scores for the drift metrics."""
        extras = self.extras(outputs)
        labels: list[str] = []
        if "label" in extras:
            labels = [str(v) for v in extras["label"]]
        elif self.mode == "tabular-classifier":
            labels = [str(self._label(int(v))) for v in np.asarray(outputs["label"]).reshape(-1)]
        scores = [float(s) for s in extras["score"]] if "score" in extras else []
        return labels, scores
