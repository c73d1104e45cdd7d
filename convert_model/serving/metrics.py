"""Prometheus metrics beside KServe's own, served at ``/metrics``.

Latency per protocol (and status), batch sizes, queue depth, rejections, and the predicted
classes and scores, so that drift shows over time.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

REQUEST_LATENCY = Histogram(
    "serving_request_latency_seconds", "Request latency, from the first byte to the answer",
    ["protocol", "code"], buckets=LATENCY_BUCKETS,
)
INFERENCE_LATENCY = Histogram(
    "serving_batch_inference_seconds", "Time one batch spends in inference",
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "serving_batch_size", "Rows per batch run", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
QUEUE_DEPTH = Gauge("serving_queue_depth", "Rows admitted and not yet answered")
REJECTED = Counter("serving_rejected_total", "Requests refused before inference", ["reason"])
PREDICTED_CLASS = Counter("serving_predicted_class_total", "Predicted classes", ["label"])
PREDICTED_SCORE = Histogram(
    "serving_predicted_score", "Top probability (classifiers) or score (regressors)",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)


def observe_predictions(labels: list[str], scores: list[float]) -> None:
    """Count predicted classes and record scores."""
    for label in labels:
        PREDICTED_CLASS.labels(label=label).inc()
    for score in scores:
        PREDICTED_SCORE.observe(score)
