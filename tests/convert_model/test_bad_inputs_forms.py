"""Bad inputs of the handoff forms (CatBoost, fastText, Keras, sentence-transformers,
TensorFlow): each is exit code 2 with one line naming the file and the fault."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.convert_model.test_bad_inputs import check_bad_input
from tests.converters.test_keras import tiny_cnn
from tests.converters.test_sentence_transformers import st_folder
from tests.fixtures.fasttext_models import train_tiny

PICKLE = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One good file of each form, whose bytes the cases cut or break."""
    import catboost

    folder = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    model = catboost.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False)
    model.fit(rng.standard_normal((100, 3)), rng.integers(0, 2, 100))
    model.save_model(str(folder / "m.cbm"))
    train_tiny(folder).save_model(str(folder / "m.bin"))
    tiny_cnn(folder / "m.keras")
    return {"cbm": folder / "m.cbm", "bin": folder / "m.bin", "keras": folder / "m.keras"}


Case = Callable[[dict[str, Path], Path], tuple[list[str], list[str]]]


def _write(path: Path, data: bytes) -> list[str]:
    path.write_bytes(data)
    return [str(path)]


def _modules(tmp: Path, text: str) -> list[str]:
    folder = st_folder(tmp / "st", ("mean_tokens",))
    (folder / "modules.json").write_text(text)
    return [str(folder)]


CASES: dict[str, Case] = {
    "catboost truncated": lambda v, t: (
        _write(t / "m.cbm", v["cbm"].read_bytes()[:200]), ["m.cbm", "not a loadable CatBoost"]),
    "catboost wrong magic": lambda v, t: (
        _write(t / "m.cbm", b"tree\nversion=v4\n"), ["m.cbm", "not a CatBoost model"]),
    "catboost pickle": lambda v, t: (_write(t / "m.cbm", PICKLE), ["m.cbm", "a pickle"]),
    "fasttext truncated": lambda v, t: (
        _write(t / "m.bin", v["bin"].read_bytes()[:5000]), ["m.bin", "truncated"]),
    "fasttext cut inside the header": lambda v, t: (
        _write(t / "m.bin", v["bin"].read_bytes()[:30]), ["m.bin", "truncated"]),
    "fasttext wrong magic": lambda v, t: (
        _write(t / "m.ftz", b"\x00" * 64), ["m.ftz", "not a fastText model"]),
    "fasttext pickle": lambda v, t: (_write(t / "m.ftz", PICKLE), ["m.ftz", "not a fastText"]),
    "keras truncated": lambda v, t: (
        _write(t / "m.keras", v["keras"].read_bytes()[:300]), ["m.keras", ".keras archive"]),
    "keras wrong magic": lambda v, t: (
        _write(t / "m.keras", b"{\"class_name\": 1}"), ["m.keras", "not a Keras 3 archive"]),
    "keras pickle": lambda v, t: (_write(t / "m.keras", PICKLE), ["m.keras", "a pickle"]),
    "keras h5": lambda v, t: (
        _write(t / "m.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64), ["m.h5", "needs TensorFlow"]),
    "sentence-transformers modules.json not JSON": lambda v, t: (
        _modules(t, "{not json"), ["modules.json", "not valid JSON"]),
    "sentence-transformers Dense module": lambda v, t: (
        _modules(t, json.dumps([{"idx": 0, "path": "", "type": "sentence_transformers.models."
                                 "Transformer"}, {"idx": 1, "path": "2_Dense",
                                                  "type": "sentence_transformers.models.Dense"}])),
        ["modules.json", "Dense' is not supported"]),
}


def test_bad_form_corpus_covers_each_new_form():
    forms = {name.split()[0] for name in CASES}
    assert forms == {"catboost", "fasttext", "keras", "sentence-transformers"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_form_input_exits_2_with_one_clear_line(valid: dict[str, Path], tmp_path: Path,
                                                    capsys, name: str):
    args, needles = CASES[name](valid, tmp_path)
    checkpoint = Path(args[0])
    before = checkpoint.read_bytes() if checkpoint.is_file() else None
    check_bad_input(args, needles, tmp_path, capsys)
    if before is not None:
        assert checkpoint.read_bytes() == before, "the input was not changed"


def test_savedmodel_folder_exits_2_naming_tensorflow(tmp_path: Path, capsys):
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"\x08\x01")
    check_bad_input([str(tmp_path / "saved")], ["saved", "needs TensorFlow"], tmp_path, capsys)
