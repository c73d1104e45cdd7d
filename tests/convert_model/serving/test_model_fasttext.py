"""The predictor served for a fastText bundle: raw text in, fastText's labels out, no fasttext."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convert_model import convert
from tests.fixtures.fasttext_models import train_tiny
from tests.fixtures.serving import Server, serving

TEXTS = ["kalo mine", "ruto vévé", "unseen wörds only", ""]


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("ft-serve")
    model = train_tiny(folder, loss="softmax", multi_label=False)
    path = folder / "softmax.bin"
    model.save_model(str(path))
    return model, path


@pytest.fixture(scope="module")
def server(fasttext_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _, path = fasttext_model
    out = convert(path, out=tmp_path_factory.mktemp("ft-bundle") / "b", sweep="off",
                  precision="fp32").out
    with serving(out, tmp_path_factory.mktemp("logs") / "fasttext.log") as s:
        yield s


def test_server_answers_fasttexts_top_label_and_probabilities_for_raw_text(server: Server,
                                                                           fasttext_model):
    model, _ = fasttext_model
    response = server.v1(TEXTS)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    labels, probabilities = model.predict(TEXTS, k=-1)
    for prediction, want_labels, want_p in zip(predictions, labels, probabilities, strict=True):
        assert prediction["label"] == want_labels[0]
        for label, p in zip(want_labels, want_p, strict=True):
            assert abs(prediction["probabilities"][label] - float(p)) <= 1e-5


def test_server_v2_text_tensor_equals_v1(server: Server):
    v1 = server.v1(["kalo mine"]).json()["predictions"][0]
    v2 = server.v2([{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["kalo mine"]}])
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["label"]["data"] == [v1["label"]]


@pytest.mark.parametrize("instance", [17, "two\nlines", {"txt": "x"}])
def test_server_refuses_what_is_not_one_line_of_text(server: Server, instance: object):
    response = server.v1([instance])
    assert response.status_code == 400, response.text
    assert server.v1(["kalo mine"]).status_code == 200, "still serving"
