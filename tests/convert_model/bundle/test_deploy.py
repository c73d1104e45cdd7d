"""Deployment files in the bundle: Dockerfile pins, a valid InferenceService, Triton layout."""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

import yaml

from convert_model import verify
from convert_model.bundle.deploy import PINNED, inference_service

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_dockerfile_pins_exactly_the_installed_versions_and_no_torch(text_bundle: Path):
    text = (text_bundle / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+-slim$", text, re.M)
    (install,) = [line for line in text.splitlines() if line.startswith("RUN pip install")]
    pins = dict(p.split("==") for p in install.split()[4:])
    assert pins == {name: metadata.version(name) for name in PINNED}
    assert "torch" not in text and "transformers" not in text
    assert '"-m", "serving", "--bundle", "/mnt/models"' in text


def test_dockerfile_pins_the_serve_extras_range_when_kserve_is_not_installed(monkeypatch):
    from convert_model.bundle import deploy

    real = metadata.version

    def version(name: str) -> str:
        if name == "kserve":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(deploy.metadata, "version", version)
    versions = deploy.pinned_versions()
    assert versions["kserve"] == "0.21.*" and versions["onnxruntime"] == real("onnxruntime")
    text = deploy.dockerfile(versions)
    assert "kserve==0.21.*" in text and "kserve: not installed there" in text


def test_inference_service_yaml_is_a_valid_v1beta1_inference_service(text_bundle: Path):
    service = yaml.safe_load((text_bundle / "inference_service.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    assert DNS_1123.match(service["metadata"]["name"])
    (container,) = service["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container" and container["image"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STORAGE_URI"].startswith("s3://") and env["MODEL_NAME"] == \
        service["metadata"]["name"]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert env["SERVING_THREADS"] == limits["cpu"] == requests["cpu"]
    manifest = json.loads((text_bundle / "manifest.json").read_text())
    assert int(limits["cpu"]) == manifest["measurement"]["threads"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert re.match(r"^\d+Mi$", requests["memory"])


def test_inference_service_sizes_memory_from_measured_peak():
    service = yaml.safe_load(inference_service("m", 4, 300.0))
    resources = service["spec"]["predictor"]["containers"][0]["resources"]
    assert resources["requests"]["memory"] == "384Mi"  # 300 MB x 1.25, in 64 Mi steps
    assert resources["limits"]["memory"] == "768Mi" and resources["limits"]["cpu"] == "4"


def test_triton_repository_only_for_tensor_models(tensor_bundle: Path, text_bundle: Path):
    assert not (text_bundle / "triton").exists()
    (folder,) = (tensor_bundle / "triton").iterdir()
    config = (folder / "config.pbtxt").read_text()
    assert f'name: "{folder.name}"' in config and 'platform: "onnxruntime_onnx"' in config
    manifest = json.loads((tensor_bundle / "manifest.json").read_text())
    for tensor in manifest["inputs"] + manifest["outputs"]:
        assert f'name: "{tensor["name"]}"' in config
    recommended = next(v for v in manifest["variants"] if v["name"] == manifest["recommended"])
    assert manifest["files"][f"triton/{folder.name}/1/model.onnx"] == recommended["sha256"]


def test_deployment_files_are_hashed_and_verified(text_bundle: Path, tmp_path: Path):
    files = json.loads((text_bundle / "manifest.json").read_text())["files"]
    assert {"Dockerfile", "inference_service.yaml", "serving/model.py",
            "serving/__main__.py"} <= set(files)
    copy = tmp_path / "bundle"
    shutil.copytree(text_bundle, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert verify(copy).ok
    with (copy / "serving" / "model.py").open("a") as f:
        f.write("\n# changed\n")
    assert any("serving/model.py" in p for p in verify(copy).problems)


def test_model_card_says_how_to_deploy_and_call_it(text_bundle: Path):
    card = (text_bundle / "MODEL_CARD.md").read_text()
    assert "convert-model serve BUNDLE" in card
    assert re.search(r"curl .*/v1/models/[a-z0-9-]+:predict", card)
    assert re.search(r"curl .*/v2/models/[a-z0-9-]+/infer", card)
