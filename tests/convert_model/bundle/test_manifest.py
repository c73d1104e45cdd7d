"""The manifest reader: round-trips what the writer writes, and meets anything else with
BundleError, never another exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convert_model.bundle.manifest import Manifest, read_manifest
from convert_model.core.errors import BundleError
from tests.fixtures.models import Zoo

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def manifest_json(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from convert_model import convert

    out = tmp_path_factory.mktemp("manifest") / "b"
    convert(model_zoo.custom_pt2, out=out, precision="fp32", sweep="off")
    return json.loads((out / "manifest.json").read_text())


def test_manifest_round_trips(manifest_json: dict):
    again = Manifest.from_json(manifest_json).to_json()
    assert again == manifest_json


@given(_json)
def test_manifest_reader_rejects_arbitrary_json_with_bundle_error(data):
    try:
        Manifest.from_json(data)
    except BundleError:
        pass


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(
        [
            "source",
            "export",
            "variants",
            "inputs",
            "files",
            "recommended",
            "schema_version",
            "created",
            "toolchain",
        ]
    ),
    value=_json,
)
def test_manifest_reader_rejects_corrupted_fields_with_bundle_error(
    manifest_json: dict, key, value
):
    data = {**manifest_json, key: value}
    try:
        Manifest.from_json(data)
    except BundleError:
        pass


def test_read_manifest_on_garbage_is_a_bundle_error(tmp_path: Path):
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(tmp_path)
    with pytest.raises(BundleError, match="no manifest.json"):
        read_manifest(tmp_path / "missing")
