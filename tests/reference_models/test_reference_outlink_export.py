"""The outlink-topic class exports to ONNX with both torch exporters, dynamic in batch and items."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_models import BuiltReference


def _load(reference: BuiltReference) -> torch.nn.Module:
    from safetensors.torch import load_file

    class_file, class_name = reference.options["model_class"].rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("outlink_topic_export_test", class_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, class_name)()
    model.load_state_dict(load_file(reference.checkpoint))
    return model.eval()


def _item_ids(batch: int, items: int, seed: int) -> torch.Tensor:
    ids = torch.randint(1, 200_000, (batch, items), generator=torch.Generator().manual_seed(seed))
    ids[:, items // 2 :] = 0  # padded bags
    ids[0, 1:] = 0  # a bag of one item
    return ids


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_outlink_topic_exports_to_onnx_matching_torch_at_two_shapes(
    dynamo: bool, built: Callable[[str], BuiltReference], tmp_path: Path
) -> None:
    import onnxruntime

    model = _load(built("outlink-topic"))
    path = tmp_path / "outlink_topic.onnx"
    example = (_item_ids(2, 8, seed=0),)
    if dynamo:
        dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("items")}
        torch.onnx.export(
            model,
            example,
            path,
            dynamo=True,
            input_names=["item_ids"],
            output_names=["logits"],
            dynamic_shapes={"item_ids": dims},
        )
    else:
        torch.onnx.export(
            model,
            example,
            path,
            dynamo=False,
            input_names=["item_ids"],
            output_names=["logits"],
            dynamic_axes={"item_ids": {0: "batch", 1: "items"}, "logits": {0: "batch"}},
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, items in ((1, 32), (4, 16)):
        ids = _item_ids(batch, items, seed=batch)
        (onnx_logits,) = session.run(["logits"], {"item_ids": ids.numpy()})
        with torch.no_grad():
            torch_logits = model(ids).numpy()
        np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=0)
