"""Image pre-processing: base64 images resized and normalised as preprocessor_config.json says."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convert_model.serving.bundle_info import BundleInfo, Tensor
from convert_model.serving.images import ImageKind
from convert_model.serving.inputs import RequestError, kind_name

CONFIG = {"do_resize": True, "size": {"height": 8, "width": 6}, "do_rescale": True,
          "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.4, 0.3],
          "image_std": [0.2, 0.25, 0.3]}


def _info(tmp_path: Path) -> BundleInfo:
    return BundleInfo(folder=tmp_path, manifest={}, model_file="model.onnx",
                      inputs=(Tensor(name="pixel_values", dtype="float32",
                                     shape=("batch", 3, 8, 6)),),
                      outputs=(Tensor(name="logits", dtype="float32", shape=("batch", 2)),),
                      preprocessor=CONFIG)


def _png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_image_kind_resizes_and_normalises_as_the_config_says(tmp_path: Path):
    info = _info(tmp_path)
    assert kind_name(info) == "image"
    rgb = np.random.default_rng(0).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    item = ImageKind(info).parse({"b64": _png(rgb)})
    resized = np.asarray(Image.fromarray(rgb).resize((6, 8), Image.Resampling.BILINEAR),
                         dtype=np.float32) / 255
    expected = ((resized - CONFIG["image_mean"]) / CONFIG["image_std"]).transpose(2, 0, 1)
    np.testing.assert_allclose(item.feed["pixel_values"][0], expected, rtol=1e-6, atol=1e-6)
    assert item.feed["pixel_values"].shape == (1, 3, 8, 6)


@pytest.mark.parametrize(("instance", "needle"), [
    ("not base64!", "not valid base64"),
    (base64.b64encode(b"GIF89a not an image").decode(), "not a PNG/JPEG/WEBP image"),
    (3, "base64 string"),
])
def test_image_kind_refuses_what_is_not_an_image(tmp_path: Path, instance: object, needle: str):
    with pytest.raises(RequestError, match=needle):
        ImageKind(_info(tmp_path)).parse(instance)
