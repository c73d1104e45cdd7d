"""Recognise a checkpoint's form from its path and, where the suffix is ambiguous, its bytes."""

from __future__ import annotations

import errno
import os
import re
import stat
import zipfile
from pathlib import Path

from convert_model.core.errors import CheckpointError, UsageError
from converters.archive import archive_kind
from converters.types import CheckpointForm

_SUFFIX_FORMS = {
    ".onnx": CheckpointForm.ONNX,
    ".ipynb": CheckpointForm.NOTEBOOK,
    ".pt2": CheckpointForm.TORCH_EXPORT,
    ".safetensors": CheckpointForm.STATE_DICT,
    ".ts": CheckpointForm.TORCHSCRIPT,
    ".torchscript": CheckpointForm.TORCHSCRIPT,
    ".pkl": CheckpointForm.PICKLE,
    ".pickle": CheckpointForm.PICKLE,
    ".joblib": CheckpointForm.PICKLE,
    ".ubj": CheckpointForm.XGBOOST,
    ".skops": CheckpointForm.SKOPS,
    ".ftz": CheckpointForm.FASTTEXT,
    ".h5": CheckpointForm.KERAS_H5,
    ".hdf5": CheckpointForm.KERAS_H5,
}
# Forms told by their first bytes: the suffix, the magic, and what the file should be.
_MAGIC_FORMS = {
    ".cbm": (b"CBM1", CheckpointForm.CATBOOST, "a CatBoost model (CBM1)"),
    ".keras": (b"PK\x03\x04", CheckpointForm.KERAS, "a Keras 3 archive (a zip)"),
}
FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # fastText's FASTTEXT_FILEFORMAT_MAGIC_INT32
_SNIFFED_SUFFIXES = (".json", ".txt", ".lgb", ".model")
_TORCH_SAVE_SUFFIXES = (".pt", ".pth", ".bin")
_TRAINER_DIR = re.compile(r"^checkpoint-\d+$")
_PICKLE_MAGIC = b"\x80"  # every pickle protocol >= 2 starts with PROTO


_STATE_DICT_FORMS = (CheckpointForm.STATE_DICT, CheckpointForm.PICKLE)


def _stat(path: Path) -> os.stat_result:
    """``path``'s status, with a message naming why it cannot be read."""
    try:
        return path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CheckpointError(f"{path}: a symbolic link loop") from e
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise CheckpointError(f"{path}: no such file or folder") from e
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from e


def detect_form(path: Path, model_class: str | None = None) -> CheckpointForm:
    """Return the form of the checkpoint at ``path``; raise CheckpointError when it has none.

    With ``model_class`` the user asked for a state_dict: a file of another form is refused
    (never silently loaded as that form, ``--model-class`` ignored).
    """
    form = _detect(path)
    if model_class and form not in _STATE_DICT_FORMS:
        raise UsageError(
            f"{path}: --model-class is for a state_dict, but this is a {form} checkpoint; "
            "drop --model-class, or pass the state_dict file"
        )
    return form


def _detect(path: Path) -> CheckpointForm:
    status = _stat(path)
    if stat.S_ISDIR(status.st_mode):
        return _folder_form(path)
    if not stat.S_ISREG(status.st_mode):
        raise CheckpointError(
            f"{path}: not a regular file (a pipe, socket or device); pass the checkpoint file"
        )
    suffix = path.suffix.lower()
    if status.st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if suffix in _SUFFIX_FORMS:
        return _SUFFIX_FORMS[suffix]
    if suffix in _MAGIC_FORMS:
        return _magic_form(path, *_MAGIC_FORMS[suffix])
    if suffix == ".bin" and _head(path, 4) == FASTTEXT_MAGIC:
        return CheckpointForm.FASTTEXT
    if suffix in _TORCH_SAVE_SUFFIXES:
        return _torch_save_form(path)
    if suffix in _SNIFFED_SUFFIXES:
        return _text_model_form(path)
    known = sorted([*_SUFFIX_FORMS, *_MAGIC_FORMS, *_TORCH_SAVE_SUFFIXES, *_SNIFFED_SUFFIXES])
    raise CheckpointError(
        f"{path}: unrecognised checkpoint suffix {suffix or '(none)'!r}; expected a model "
        f"folder with config.json or one of {', '.join(known)}"
    )


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def _magic_form(path: Path, magic: bytes, form: CheckpointForm, what: str) -> CheckpointForm:
    head = _head(path, len(magic))
    if head == magic:
        return form
    kind = "a pickle" if head[:1] == _PICKLE_MAGIC else "something else"
    raise CheckpointError(
        f"{path}: not {what}: the file starts with {head!r}, {kind}; is it truncated "
        "or of another format?"
    )


def _folder_form(path: Path) -> CheckpointForm:
    if (path / "modules.json").is_file():
        return CheckpointForm.SENTENCE_TRANSFORMERS
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        return CheckpointForm.TF_SAVEDMODEL
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{path}: a folder checkpoint needs a config.json (a Hugging Face model or "
            "Trainer checkpoint folder); none found"
        )
    if (path / "trainer_state.json").is_file() or _TRAINER_DIR.match(path.name):
        return CheckpointForm.HF_TRAINER_CHECKPOINT
    return CheckpointForm.HF_MODEL


def _torch_save_form(path: Path) -> CheckpointForm:
    """Tell a TorchScript archive, an exported program and a torch.save file apart."""
    if zipfile.is_zipfile(path):
        kind = archive_kind(path)
        if kind == "torchscript":
            return CheckpointForm.TORCHSCRIPT
        if kind == "torch-export":
            return CheckpointForm.TORCH_EXPORT
        if kind == "torch-save":
            return CheckpointForm.STATE_DICT
        raise CheckpointError(f"{path}: a zip archive that is not a torch.save file")
    head = _head(path, 2)
    if head[:1] == _PICKLE_MAGIC:
        return CheckpointForm.STATE_DICT  # legacy (non-zip) torch.save; loaded weights-only
    raise CheckpointError(
        f"{path}: not a torch.save file (neither a zip archive nor a pickle); "
        "is it truncated or of another format?"
    )


def _text_model_form(path: Path) -> CheckpointForm:
    """An XGBoost JSON model or a LightGBM text model, told apart by their first bytes."""
    with path.open("rb") as f:
        head = f.read(4096)
    text = head.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{") and '"learner"' in text:
        return CheckpointForm.XGBOOST
    if text.startswith("tree\n") or "\nversion=v" in text[:200]:
        return CheckpointForm.LIGHTGBM
    raise CheckpointError(
        f"{path}: neither an XGBoost JSON model nor a LightGBM text model"
    )
