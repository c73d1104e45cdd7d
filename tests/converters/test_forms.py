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


@pytest.mark.parametrize(
    ("name", "content", "form"),
    [
        ("m.cbm", b"CBM1" + b"\0" * 16, CheckpointForm.CATBOOST),
        ("m.bin", (793712314).to_bytes(4, "little") + b"\0" * 16, CheckpointForm.FASTTEXT),
        ("m.ftz", b"\0" * 16, CheckpointForm.FASTTEXT),
        ("m.keras", b"PK\x03\x04" + b"\0" * 16, CheckpointForm.KERAS),
        ("m.h5", b"\x89HDF\r\n\x1a\n", CheckpointForm.KERAS_H5),
    ],
)
def test_detect_form_recognises_handoff_library_files(tmp_path: Path, name, content, form):
    (tmp_path / name).write_bytes(content)
    assert detect_form(tmp_path / name) is form


def test_detect_form_takes_modules_json_as_sentence_transformers_before_hf(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "modules.json").write_text("[]")
    assert detect_form(tmp_path) is CheckpointForm.SENTENCE_TRANSFORMERS
    (tmp_path / "modules.json").unlink()
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    assert detect_form(tmp_path) is CheckpointForm.TF_SAVEDMODEL


def test_detect_form_names_a_pickle_where_a_library_file_should_be(tmp_path: Path):
    (tmp_path / "m.cbm").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="not a CatBoost model.*a pickle"):
        detect_form(tmp_path / "m.cbm")
