"""The predictor served for a text classifier: v1/v2 round trips, raw text, errors, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from convert_model.bundle.verify import load_sets
from convert_model.cli_serve import verify_server
from tests.fixtures.serving import Server, serving


@pytest.fixture(scope="module")
def server(text_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cgroup = tmp_path_factory.mktemp("cgroup")
    (cgroup / "cpu.max").write_text("100000 100000\n")  # one CPU
    log = tmp_path_factory.mktemp("logs") / "text.log"
    with serving(text_bundle, log, env={"SERVING_CGROUP_ROOT": str(cgroup)}) as s:
        yield s


def _session(bundle: Path) -> ort.InferenceSession:
    manifest = json.loads((bundle / "manifest.json").read_text())
    file = next(v["file"] for v in manifest["variants"] if v["name"] == manifest["recommended"])
    return ort.InferenceSession(str(bundle / file), providers=["CPUExecutionProvider"])


def _tokenized(bundle: Path, text: str, pair: str | None = None) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=128)
    e = tokenizer.encode(text, pair)
    return {"input_ids": np.asarray([e.ids]), "attention_mask": np.asarray([e.attention_mask]),
            "token_type_ids": np.asarray([e.type_ids])}


def test_server_v1_raw_text_equals_tokenizer_plus_graph(server: Server, text_bundle: Path):
    session = _session(text_bundle)
    instances = ["the cat sat on the mat", ["first text", "second text"],
                 {"text": "a much longer text " * 40}]
    response = server.v1(instances)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    pairs = [("the cat sat on the mat", None), ("first text", "second text"),
             ("a much longer text " * 40, None)]
    for prediction, (text, pair) in zip(predictions, pairs, strict=True):
        (logits,) = session.run(None, _tokenized(text_bundle, text, pair))
        np.testing.assert_allclose(prediction["logits"], logits[0], rtol=1e-4, atol=1e-5)
        probabilities = np.exp(logits[0]) / np.exp(logits[0]).sum()
        assert prediction["label"] == f"LABEL_{int(probabilities.argmax())}"
        np.testing.assert_allclose(list(prediction["probabilities"].values()), probabilities,
                                   rtol=1e-4, atol=1e-6)


def test_server_truncates_text_at_the_model_limit(server: Server):
    response = server.v1(["word " * 1000])
    assert response.status_code == 200, response.text


def test_server_v2_raw_tensors_equal_bundle_outputs(server: Server, text_bundle: Path):
    session = _session(text_bundle)
    for feed in load_sets(text_bundle / "sample_inputs.npz"):
        inputs = [{"name": n, "datatype": "INT64", "shape": list(a.shape),
                   "data": a.reshape(-1).tolist()} for n, a in feed.items()]
        response = server.v2(inputs)
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        (expected,) = session.run(None, feed)
        got = np.asarray(outputs["logits"]["data"], dtype=np.float32).reshape(
            outputs["logits"]["shape"])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        assert outputs["label"]["datatype"] == "BYTES"


def test_server_v2_text_tensor_equals_v1(server: Server):
    v2 = server.v2([{"name": "text", "datatype": "BYTES", "shape": [2],
                     "data": ["one text", "another"]}])
    v1 = server.v1(["one text", "another"])
    logits = {o["name"]: o["data"] for o in v2.json()["outputs"]}["logits"]
    expected = [x for p in v1.json()["predictions"] for x in p["logits"]]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


JSON = {"Content-Type": "application/json"}
MALFORMED = {
    "v1 malformed JSON": ("/v1/models/m:predict", JSON, b"{bad", 400),
    "v2 malformed JSON": ("/v2/models/m/infer", JSON, b"{bad", 400),
    "no JSON content type": ("/v1/models/m:predict", {"Content-Type": "text/plain"},
                             b'{"instances": ["a"]}', 415),
    "no content type at all": ("/v2/models/m/infer", {}, b'{"inputs": []}', 415),
    "instances not a list": ("/v1/models/m:predict", JSON, b'{"instances": 3}', 400),
    "instance of the wrong type": ("/v1/models/m:predict", JSON, b'{"instances": [3]}', 400),
    "wrong shape": ("/v2/models/m/infer", JSON, json.dumps({"inputs": [
        {"name": n, "datatype": "INT64", "shape": [1, 3], "data": [1, 2]}
        for n in ("input_ids", "attention_mask", "token_type_ids")]}).encode(), 400),
    "wrong rank": ("/v2/models/m/infer", JSON, json.dumps({"inputs": [
        {"name": n, "datatype": "INT64", "shape": [3], "data": [1, 2, 3]}
        for n in ("input_ids", "attention_mask", "token_type_ids")]}).encode(), 400),
    "wrong dtype": ("/v2/models/m/infer", JSON, json.dumps({"inputs": [
        {"name": n, "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]}
        for n in ("input_ids", "attention_mask", "token_type_ids")]}).encode(), 400),
    "unknown input": ("/v1/models/m:predict", JSON,
                      b'{"instances": [{"input_ids": [1], "pixels": [2]}]}', 400),
    "text over the limit": ("/v1/models/m:predict", JSON,
                            json.dumps({"instances": ["x" * 100_001]}).encode(), 413),
    "oversize body": ("/v1/models/m:predict", JSON,
                      b'{"instances": ["' + b"y" * (9 * 1024 * 1024) + b'"]}', 413),
    "unknown model": ("/v1/models/nope:predict", JSON, b'{"instances": ["a"]}', 404),
    "unknown model v2": ("/v2/models/nope/infer", JSON, json.dumps({"inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}).encode(), 404),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_server_answers_4xx_with_one_line_json_when_request_is_malformed(server: Server,
                                                                         case: str):
    path, headers, body, status = MALFORMED[case]
    response = server.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and "\n" not in error and error
    assert server.v1(["still serving"]).status_code == 200


def test_server_metadata_gives_schema_and_cgroup_threads(server: Server):
    metadata = server.get("/v2/models/m").json()
    assert [i["name"] for i in metadata["inputs"]] == ["input_ids", "attention_mask",
                                                        "token_type_ids"]
    assert metadata["inputs"][0] == {"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]}
    parameters = metadata["parameters"]
    assert parameters["kind"] == "text" and parameters["answer"] == "classifier"
    assert parameters["threads"] == 1  # the fake cgroup's one CPU, not the host's cores
    assert "intra-op threads 1 (from cgroup v2" in server.log.read_text()


def test_server_health_and_v1_readiness(server: Server):
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get("/v1/models/m").json() == {"name": "m", "ready": True}
    assert server.get("/v2/models/m/ready").status_code == 200


def test_server_metrics_show_latency_batches_queue_and_classes(server: Server):
    server.v1(["metrics please"])
    server.v2([{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["v2 too"]}])
    text = server.get("/metrics").text
    assert 'serving_request_latency_seconds_count{code="200",protocol="v1"}' in text
    assert 'serving_request_latency_seconds_count{code="200",protocol="v2"}' in text
    assert "serving_batch_size_bucket" in text and "serving_queue_depth" in text
    assert 'serving_predicted_class_total{label="LABEL_' in text
    assert "serving_predicted_score_bucket" in text
    assert "request_predict_seconds" in text  # KServe's own


def test_verify_server_passes_and_catches_a_changed_reference(server: Server, text_bundle: Path,
                                                              tmp_path: Path):
    assert verify_server(text_bundle, server.url) == []
    import shutil

    changed = tmp_path / "changed"
    shutil.copytree(text_bundle, changed)
    sets = load_sets(changed / "reference_outputs.npz")
    np.savez(changed / "reference_outputs.npz",
             **{f"{i}/{k}": -v for i, s in enumerate(sets) for k, v in s.items()})
    problems = verify_server(changed, server.url)
    assert problems and all("logits" in p for p in problems)
