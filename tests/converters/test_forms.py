from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convert_model.core.errors import CheckpointError
from converters.forms import detect_form
from converters.types import CheckpointForm
from tests.fixtures.models import Zoo


@pytest.mark.parametrize(
    ("attr", "form"),
    [
        ("bert", CheckpointForm.HF_MODEL),
        ("trainer_checkpoint", CheckpointForm.HF_TRAINER_CHECKPOINT),
        ("custom_safetensors", CheckpointForm.STATE_DICT),
        ("custom_pt", CheckpointForm.STATE_DICT),
        ("custom_pt2", CheckpointForm.TORCH_EXPORT),
        ("custom_torchscript", CheckpointForm.TORCHSCRIPT),
    ],
)
def test_detect_form_recognises_each_checkpoint(model_zoo: Zoo, attr, form):
    assert detect_form(getattr(model_zoo, attr)) is form


def test_detect_form_recognises_torchscript_and_export_by_content(model_zoo: Zoo, tmp_path: Path):
    renamed = tmp_path / "exported.pt"
    renamed.write_bytes(model_zoo.custom_pt2.read_bytes())
    assert detect_form(renamed) is CheckpointForm.TORCH_EXPORT


def test_detect_form_takes_legacy_torch_save_as_state_dict(tmp_path: Path):
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    assert detect_form(path) is CheckpointForm.STATE_DICT


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pt", None, "no such file"),
        ("empty.safetensors", b"", "empty"),
        ("garbage.pt", b"this is not a checkpoint", "not a torch.save file"),
        ("model.xyz", b"data", "unrecognised checkpoint suffix"),
    ],
)
def test_detect_form_rejects_bad_files(tmp_path: Path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        detect_form(path)


def test_detect_form_rejects_folder_without_config(tmp_path: Path):
    with pytest.raises(CheckpointError, match="needs a config.json"):
        detect_form(tmp_path)


def test_detect_form_trainer_by_state_file(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "trainer_state.json").write_text("{}")
    assert detect_form(tmp_path) is CheckpointForm.HF_TRAINER_CHECKPOINT
