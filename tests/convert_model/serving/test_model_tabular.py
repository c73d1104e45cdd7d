"""The predictor served for a tabular model: named features, schema errors, 503, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from tests.fixtures.serving import Server, serving, start_server, stop_server


@pytest.fixture(scope="module")
def server(tabular_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tabular_bundle, tmp_path_factory.mktemp("logs") / "tabular.log") as s:
        yield s


def _features(bundle: Path) -> list[str]:
    return json.loads((bundle / "manifest.json").read_text())["input_schema"]["features"]


def _expected(bundle: Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": rows}), strict=True))


def test_server_v1_named_features_in_any_order_equal_the_graph(server: Server,
                                                               tabular_bundle: Path):
    features = _features(tabular_bundle)
    rng = np.random.default_rng(0)
    rows = rng.uniform(0, 50, size=(4, len(features))).astype(np.float32)
    rows[1, 2] = np.nan  # missing: the schema's convention is NaN
    instances = []
    for row in rows:
        pairs = [(f, float(v)) for f, v in zip(features, row, strict=True) if not np.isnan(v)]
        instances.append(dict(reversed(pairs)))
    response = server.v1(instances)
    assert response.status_code == 200, response.text
    expected = _expected(tabular_bundle, rows)
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == expected["label"].tolist()
    np.testing.assert_allclose([p["probabilities"] for p in predictions],
                               expected["probabilities"], rtol=1e-6, atol=1e-7)


def test_server_v2_feature_tensors_and_raw_input_agree(server: Server, tabular_bundle: Path):
    features = _features(tabular_bundle)
    rows = np.arange(2 * len(features), dtype=np.float32).reshape(2, -1)
    by_feature = server.v2([{"name": f, "datatype": "FP32", "shape": [2],
                             "data": rows[:, i].tolist()} for i, f in enumerate(features)])
    raw = server.v2([{"name": "input", "datatype": "FP32", "shape": list(rows.shape),
                      "data": rows.reshape(-1).tolist()}])
    assert by_feature.status_code == raw.status_code == 200, by_feature.text + raw.text
    expected = _expected(tabular_bundle, rows)["probabilities"]
    for response in (by_feature, raw):
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        np.testing.assert_allclose(np.reshape(outputs["probabilities"]["data"], (2, -1)),
                                   expected, rtol=1e-6)


@pytest.mark.parametrize(("instance", "needle"), [
    ({"no_such_feature": 1.0}, "unknown feature 'no_such_feature'"),
    ({"user_edit_count": "many"}, "feature 'user_edit_count' must be a number"),
    ({"user_edit_count": [1, 2]}, "feature 'user_edit_count' must be a number"),
])
def test_server_names_the_feature_when_it_is_unknown_or_mistyped(server: Server,
                                                                 instance: dict, needle: str):
    response = server.v1([{"user_age_days": 3.0}, instance])
    assert response.status_code == 400
    assert response.json()["error"].startswith("instances[1]: " + needle)
    assert server.v1([{"user_age_days": 3.0}]).status_code == 200


async def _burst(url: str, count: int, body: dict) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(client.post(url, json=body) for _ in range(count))))


def test_server_answers_503_with_retry_after_when_the_queue_is_full(tabular_bundle: Path,
                                                                    tmp_path: Path):
    # A long batching wait holds the first two rows in the queue while the burst arrives.
    flags = ("--max-queue", "2", "--max-wait-ms", "3000", "--max-batch", "64", "--wait-when-idle")
    with serving(tabular_bundle, tmp_path / "busy.log", flags=flags) as server:
        url = f"{server.url}/v1/models/m:predict"
        responses = asyncio.run(_burst(url, 6, {"instances": [{"user_age_days": 1.0}]}))
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 200, 503, 503, 503, 503]
        busy = next(r for r in responses if r.status_code == 503)
        assert int(busy.headers["Retry-After"]) >= 1 and "busy" in busy.json()["error"]
        assert server.v1([{"user_age_days": 1.0}]).status_code == 200
        assert 'serving_rejected_total{reason="queue_full"} 4.0' in server.get("/metrics").text


def test_server_finishes_in_flight_requests_on_sigterm(tabular_bundle: Path, tmp_path: Path):
    server = start_server(tabular_bundle, tmp_path / "drain.log",
                          flags=("--max-wait-ms", "1500", "--max-batch", "64", "--wait-when-idle"))

    async def request_then_term() -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            pending = asyncio.ensure_future(client.post(
                f"{server.url}/v1/models/m:predict", json={"instances": [{"user_age_days": 2}]}))
            await asyncio.sleep(0.5)  # the request now waits in the batcher
            server.process.send_signal(signal.SIGTERM)
            return await pending

    start = time.monotonic()
    response = asyncio.run(request_then_term())
    assert response.status_code == 200, response.text
    assert stop_server(server) == 0
    assert time.monotonic() - start < 30
