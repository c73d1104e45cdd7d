"""Loading a Hugging Face folder: config checks, task inference, examples, files to copy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert_model.core.errors import CheckpointError, UsageError
from converters.hf_folder import infer_task, load_hf_folder, read_config
from converters.registry import LoadOptions
from converters.types import CheckpointForm
from tests.fixtures.models import Zoo


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"hidden_size": 8}', "no 'model_type' key"),
])
def test_read_config_names_the_fault(tmp_path: Path, text: str, message: str):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        read_config(tmp_path)


@pytest.mark.parametrize(("architectures", "task"), [
    ([], "feature-extraction"),
    (["BertForSequenceClassification"], "text-classification"),
    (["BertForTokenClassification"], "token-classification"),
    (["MBartForConditionalGeneration"], "text2text-generation"),
])
def test_infer_task_reads_the_first_architecture(tmp_path: Path, architectures: list[str],
                                                 task: str):
    assert infer_task({"architectures": architectures}, tmp_path) == task


def test_infer_task_refuses_an_unknown_architecture(tmp_path: Path):
    with pytest.raises(CheckpointError, match="unknown architecture 'NoSuchModel'"):
        infer_task({"architectures": ["NoSuchModel"]}, tmp_path)


def test_load_hf_folder_gives_tokenizer_examples_at_two_shapes(model_zoo: Zoo):
    loaded = load_hf_folder(model_zoo.bert, CheckpointForm.HF_MODEL, LoadOptions())
    assert loaded.task == "text-classification" and loaded.framework == "torch"
    assert "input_ids" in loaded.input_names and loaded.output_names == ("logits",)
    widths = {example["input_ids"].shape for example in loaded.examples}
    assert len(widths) >= 2, "parity runs at two or more shapes"
    outputs = loaded.run(loaded.examples[0])
    assert outputs["logits"].shape[0] == loaded.examples[0]["input_ids"].shape[0]
    assert np.isfinite(outputs["logits"]).all()
    copied = {p.name for p in loaded.files_to_copy}
    assert "config.json" in copied and "vocab.txt" in copied
    assert all(p.parent == model_zoo.bert for p in loaded.hashed_files)


def test_load_hf_folder_refuses_a_task_the_model_type_cannot_export(model_zoo: Zoo):
    with pytest.raises(UsageError, match="unknown task 'no-such-task'"):
        load_hf_folder(model_zoo.bert, CheckpointForm.HF_MODEL, LoadOptions(task="no-such-task"))


def test_load_hf_folder_refuses_a_folder_without_weights(model_zoo: Zoo, tmp_path: Path):
    folder = tmp_path / "no-weights"
    folder.mkdir()
    config = json.loads((model_zoo.bert / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError):
        load_hf_folder(folder, CheckpointForm.HF_MODEL, LoadOptions())
