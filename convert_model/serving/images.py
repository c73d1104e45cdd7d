"""Image models: base64 images, resized and normalised as preprocessor_config.json says.

Pillow comes with kserve; only PNG, JPEG and WebP are decoded, and oversized images refused.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .bundle_info import BundleInfo
from .inputs import Item, RequestError

FORMATS = ("PNG", "JPEG", "WEBP")
MAX_PIXELS = 40_000_000


def _size(config: Mapping[str, Any], key: str, default: int) -> tuple[int, int]:
    value = config.get(key, default)
    if isinstance(value, Mapping):
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        edge = int(value.get("shortest_edge", default))
        return edge, edge
    return int(value), int(value)


class ImageKind:
    """``{"b64": ...}`` or a base64 string per instance, to ``pixel_values`` [1, 3, H, W]."""

    name = "image"

    def __init__(self, info: BundleInfo) -> None:
        """Read resize, rescale and normalisation settings."""
        config = info.preprocessor or {}
        self.size = _size(config, "size", 224)
        self.crop = _size(config, "crop_size", 0) if config.get("do_center_crop") else None
        self.resize = bool(config.get("do_resize", True))
        self.rescale = float(config.get("rescale_factor", 1 / 255)) \
            if config.get("do_rescale", True) else 1.0
        self.normalize = bool(config.get("do_normalize", True))
        self.mean = np.asarray(config.get("image_mean", [0.5, 0.5, 0.5]), dtype=np.float32)
        self.std = np.asarray(config.get("image_std", [0.5, 0.5, 0.5]), dtype=np.float32)
        self.input = "pixel_values"

    def pixels(self, data: bytes) -> np.ndarray:
        """Decode, convert to RGB, resize, rescale, normalise; CHW float32."""
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                rgb = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise RequestError(f"not a {'/'.join(FORMATS)} image ({type(e).__name__})") from e
        if self.resize:
            height, width = self.size
            rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
        if self.crop:
            height, width = self.crop
            left, top = (rgb.width - width) // 2, (rgb.height - height) // 2
            rgb = rgb.crop((left, top, left + width, top + height))
        array = np.asarray(rgb, dtype=np.float32) * np.float32(self.rescale)
        if self.normalize:
            array = (array - self.mean) / self.std
        return array.transpose(2, 0, 1).astype(np.float32)

    def parse(self, instance: Any) -> Item:
        """A base64 string or ``{"b64": ...}``."""
        if isinstance(instance, Mapping) and set(instance) == {"b64"}:
            instance = instance["b64"]
        if not isinstance(instance, str):
            raise RequestError("an image instance is a base64 string or {\"b64\": ...}")
        try:
            data = base64.b64decode(instance, validate=True)
        except (binascii.Error, ValueError) as e:
            raise RequestError(f"image is not valid base64 ({e})") from e
        pixels = self.pixels(data)
        return Item(feed={self.input: pixels[None]}, key=("image", pixels.shape))

    def parse_v2(self, arrays: Mapping[str, np.ndarray]) -> list[Item] | None:
        """``image`` BYTES [n] of base64 strings; raw ``pixel_values`` go to the tensor check."""
        if "image" not in arrays:
            return None
        return [self.parse(v.decode() if isinstance(v, bytes) else v)
                for v in np.asarray(arrays["image"]).reshape(-1)]

    def collate(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """Stack images of one size."""
        return {self.input: np.concatenate([i.feed[self.input] for i in items])}

    def describe(self) -> dict[str, Any]:
        """Forms an image model takes."""
        return {"instances": ["<base64 PNG/JPEG/WebP>", {"b64": "..."}],
                "v2": {"image": "BYTES [n] base64"}, "size": list(self.size)}
