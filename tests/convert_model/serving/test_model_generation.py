"""The predictor served for a generative model: the bundle's own loop, settings, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from convert_model.cli_serve import verify_server
from convert_model.runtime import Generator
from tests.fixtures.serving import Server, serving


@pytest.fixture(scope="module")
def server(generation_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(generation_bundle, tmp_path_factory.mktemp("logs") / "gen.log") as s:
        yield s


def _generator(bundle: Path) -> Generator:
    generation = json.loads((bundle / "manifest.json").read_text())["generation"]
    variant = next(v for v in generation["variants"] if v["name"] == generation["recommended"])
    files = {role: Path(path).name for role, path in variant["files"].items()}
    return Generator(bundle / "generation" / variant["name"], files=files,
                     config_folder=bundle / "generation")


@pytest.mark.parametrize("settings", [{}, {"max_new_tokens": 4}, {"num_beams": 2}])
def test_server_v1_generates_what_the_bundle_loop_generates(server: Server,
                                                            generation_bundle: Path,
                                                            settings: dict):
    prompts = [[5, 6, 7, 8, 2], [9, 10, 2], [11, 12, 13, 2]]
    response = server.v1([{"input_ids": p, "parameters": settings} for p in prompts])
    assert response.status_code == 200, response.text
    generator = _generator(generation_bundle)
    for prompt, prediction in zip(prompts, response.json()["predictions"], strict=True):
        ids = np.asarray([prompt])
        expected = generator.generate(ids, np.ones_like(ids), **settings)[0].tolist()
        got = prediction["sequences"]
        pad = generator.settings.pad_or_eos
        assert got[:len(expected)] == expected and set(got[len(expected):]) <= {pad}


def test_server_v2_input_ids_tensor(server: Server, generation_bundle: Path):
    response = server.v2([{"name": "input_ids", "datatype": "INT64", "shape": [1, 3],
                           "data": [9, 10, 2]}])
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    ids = np.asarray([[9, 10, 2]])
    expected = _generator(generation_bundle).generate(ids, np.ones_like(ids))
    assert outputs["sequences"]["data"] == expected.reshape(-1).tolist()


@pytest.mark.parametrize(("instance", "needle"), [
    ({"input_ids": [1, 2], "parameters": {"do_sample": True}}, "unknown generation setting"),
    ({"input_ids": [1, 2], "parameters": {"num_beams": 1000}}, "'num_beams' must be"),
    ({"input_ids": [1, 2], "parameters": {"max_new_tokens": "5"}}, "'max_new_tokens' must be"),
    ({"input_ids": [1, 99999]}, "input_ids must lie in"),
    ({"input_ids": []}, "non-empty list of integers"),
    ({"text": "hello"}, "no tokenizer.json"),
    ({"input_ids": [1], "stream": True}, "unknown field 'stream'"),
])
def test_server_refuses_generation_requests_it_cannot_honour(server: Server, instance: dict,
                                                             needle: str):
    response = server.v1([instance])
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]
    assert server.v1([{"input_ids": [9, 10, 2]}]).status_code == 200


def test_verify_server_checks_generation_against_the_original(server: Server,
                                                              generation_bundle: Path):
    assert verify_server(generation_bundle, server.url) == []
