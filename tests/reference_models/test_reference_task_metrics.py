"""Each reference model, loaded from its handoff files as a user would, clearly beats chance."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

import reference_models
from benchmarks.metrics import IGNORE_INDEX, score
from reference_models import BuiltReference
from reference_models.logo_detection import EXPORT_FILE

Inputs = Mapping[str, np.ndarray]

NOT_SCORED_HERE = {
    "readability": "BERT-base on 2 CPU cores: ~1 min to build, ~40 s to score; measured by hand",
    "sentence-outliers": "its kNN accuracy and int8 behaviour: tests/reference_models/"
    "test_reference_outliers.py",
}
"""Reference models this suite does not build, and why."""

MARGIN = {"accuracy": 0.25, "micro_f1": 0.5, "micro_f1_probabilities": 0.5,
          "token_agreement": 0.4, "spearman": 0.5}
"""How far above chance or a trivial predictor (whichever is higher) is "clearly above"."""


def _batches(rows: int, size: int = 64) -> list[slice]:
    return [slice(start, start + size) for start in range(0, rows, size)]


def _run_hf_classifier(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(built.checkpoint).eval()
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        return np.concatenate(
            [
                model(**{k: v[rows] for k, v in tensors.items()}).logits.numpy()
                for rows in _batches(len(tensors["input_ids"]))
            ]
        )


def _run_state_dict(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    from safetensors.torch import load_file

    class_file, class_name = built.options["model_class"].rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("handed_over_model", class_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, class_name)()
    model.load_state_dict(load_file(built.checkpoint), strict=True)
    with torch.no_grad():
        return model.eval()(*(torch.from_numpy(v) for v in inputs.values())).numpy()


def _run_torch_export(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    # logo-detection is handed over as its notebook; the same model lies beside it as a .pt2.
    module = torch.export.load(built.folder / EXPORT_FILE).module()
    (name,) = inputs
    with torch.no_grad():
        return np.concatenate(
            [
                module(torch.from_numpy(inputs[name][rows])).numpy()
                for rows in _batches(len(inputs[name]))
            ]
        )


def _run_generation(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(built.checkpoint).eval()
    with torch.no_grad():
        sequences = model.generate(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    # Drop the decoder start token: what follows lines up with the labels.
    return sequences[:, 1:].numpy()


def _run_xgboost(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(built.checkpoint))
    assert booster.feature_names is not None, "the handed-over booster names its features"
    (matrix,) = inputs.values()
    p_revert = booster.predict(xgb.DMatrix(matrix, feature_names=booster.feature_names))
    return np.stack([1.0 - p_revert, p_revert], axis=1)


def _run_lightgbm(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    import lightgbm as lgb

    (matrix,) = inputs.values()
    return np.asarray(lgb.Booster(model_file=str(built.checkpoint)).predict(matrix))


def _run_catboost(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    import catboost

    model = catboost.CatBoost()
    model.load_model(str(built.checkpoint), format="cbm")
    (matrix,) = inputs.values()
    return np.asarray(model.predict(matrix, prediction_type="Probability"))


def _run_fasttext(built: BuiltReference, inputs: Inputs) -> np.ndarray:
    import fasttext

    model = fasttext.load_model(str(built.checkpoint))
    index = {label: i for i, label in enumerate(model.labels)}
    out = np.zeros((len(inputs["text"]), len(index)), dtype=np.float32)
    labels, probabilities = model.predict([str(t) for t in inputs["text"]], k=-1)
    for row, (names, values) in enumerate(zip(labels, probabilities, strict=True)):
        out[row, [index[n] for n in names]] = values
    return out


RUNNERS: dict[str, Callable[[BuiltReference, Inputs], np.ndarray]] = {
    "article-descriptions": _run_generation,
    "articlequality": _run_lightgbm,
    "revertrisk-language-agnostic": _run_xgboost,
    "revertrisk-catboost": _run_catboost,
    "logo-detection": _run_torch_export,
    "outlink-topic": _run_state_dict,
    "outlink-topic-fasttext": _run_fasttext,
    "revertrisk-multilingual": _run_hf_classifier,
}


def _trivial_score(metric: str, labels: np.ndarray) -> float:
    """The metric of a predictor that ignores its input.

    Majority class, every topic, or the most common token at each position.
    """
    if metric == "accuracy":
        majority = np.bincount(labels).argmax()
        return score(metric, np.eye(labels.max() + 1)[np.full(len(labels), majority)], labels)
    if metric in ("micro_f1", "micro_f1_probabilities"):
        return score(metric, np.ones(labels.shape), labels)
    if metric == "token_agreement":
        modes = [
            np.bincount(column[column != IGNORE_INDEX]).argmax()
            if (column != IGNORE_INDEX).any()
            else 0
            for column in labels.T
        ]
        return score(metric, np.tile(modes, (len(labels), 1)), labels)
    return 0.0


def test_every_reference_model_has_a_task_metric_test_or_a_reason(
    fast_models: tuple[str, ...],
) -> None:
    assert set(RUNNERS) == set(fast_models)
    assert set(RUNNERS) | set(NOT_SCORED_HERE) == set(reference_models.names())
    assert not set(RUNNERS) & set(NOT_SCORED_HERE)


def test_reference_model_scores_clearly_above_chance_on_its_eval_set(
    fast_model: str, built: Callable[[str], BuiltReference]
) -> None:
    reference = built(fast_model)
    with np.load(reference.eval_data) as data:
        inputs = {k: data[k] for k in data.files if k != "labels"}
        labels = data["labels"]
    outputs = RUNNERS[fast_model](reference, inputs)
    value = score(reference.model.metric, outputs, labels)
    floor = max(reference.model.chance, _trivial_score(reference.model.metric, labels))
    assert value >= floor + MARGIN[reference.model.metric], (
        f"{fast_model}: {reference.model.metric} {value:.3f}, "
        f"chance or trivial predictor {floor:.3f}"
    )


def test_reference_model_eval_set_has_one_row_count_and_a_few_hundred_examples(
    fast_model: str, built: Callable[[str], BuiltReference]
) -> None:
    with np.load(built(fast_model).eval_data) as data:
        rows = {k: data[k].shape[0] for k in data.files}
    assert "labels" in rows and len(set(rows.values())) == 1
    assert 200 <= rows["labels"] <= 1000


def test_revertrisk_tokenizer_reproduces_the_eval_inputs_when_loaded_from_the_folder(
    built: Callable[[str], BuiltReference],
) -> None:
    from transformers import AutoTokenizer

    reference = built("revertrisk-multilingual")
    tokenizer = AutoTokenizer.from_pretrained(reference.checkpoint)
    sample = json.loads((reference.folder / "samples.json").read_text(encoding="utf-8"))[0]
    encoded = tokenizer(
        sample["original"],
        sample["edited"],
        padding="max_length",
        max_length=128,
        truncation=True,
        return_tensors="np",
    )
    with np.load(reference.eval_data) as data:
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            np.testing.assert_array_equal(encoded[key][0], data[key][0])
        assert int(data["labels"][0]) == int(sample["revert"])
    assert type(tokenizer).__name__ == "BertTokenizerFast"
    assert tokenizer.unk_token_id not in encoded["input_ids"][0]


def test_article_descriptions_tokenizer_reproduces_the_eval_inputs_when_loaded_from_the_folder(
    built: Callable[[str], BuiltReference],
) -> None:
    from transformers import AutoTokenizer

    reference = built("article-descriptions")
    tokenizer = AutoTokenizer.from_pretrained(reference.checkpoint)
    sample = json.loads((reference.folder / "samples.json").read_text(encoding="utf-8"))[0]
    tokenizer.src_lang = tokenizer.tgt_lang = sample["language"]
    encoded = tokenizer(sample["paragraph"], text_target=sample["description"])
    with np.load(reference.eval_data) as data:
        length = len(encoded["input_ids"])
        assert data["input_ids"][0][:length].tolist() == encoded["input_ids"]
        assert int(data["attention_mask"][0].sum()) == length
        labels = data["labels"][0]
        assert labels[labels != IGNORE_INDEX].tolist() == encoded["labels"]
    assert encoded["labels"][0] == tokenizer.convert_tokens_to_ids(sample["language"])
    assert (reference.checkpoint / "generation_config.json").is_file()


def test_logo_detection_export_runs_at_any_batch_size_and_keeps_example_inputs(
    built: Callable[[str], BuiltReference],
) -> None:
    checkpoint = built("logo-detection").folder / EXPORT_FILE
    # The example inputs are saved in the .pt2: two images, not the training set behind them.
    assert checkpoint.stat().st_size < 5_000_000
    program = torch.export.load(checkpoint)
    assert program.example_inputs is not None
    module = program.module()
    with torch.no_grad():
        for batch in (1, 5):
            assert module(torch.zeros(batch, 3, 224, 224)).shape == (batch, 2)


def test_logo_detection_notebook_is_nbformat_4_and_holds_the_code_the_export_was_built_from(
    built: Callable[[str], BuiltReference],
) -> None:
    from reference_models.logo_detection import notebook_cells
    from reference_models.notebook import code_of

    reference = built("logo-detection")
    notebook = json.loads((reference.folder / "logo_detection.ipynb").read_text(encoding="utf-8"))
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    code_cells = [
        "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"
    ]
    assert "\n\n".join(code_cells) + "\n" == code_of(notebook_cells())
    for index, source in enumerate(code_cells):
        compile(source, f"cell {index}", "exec")
    assert any(source.lstrip().startswith("model.eval()") for source in code_cells)
    assert "example_inputs = (" in code_cells[-1]
    assert len({cell["id"] for cell in notebook["cells"]}) == len(notebook["cells"])


def test_reference_model_options_point_at_files_in_the_build(
    fast_model: str, built: Callable[[str], BuiltReference]
) -> None:
    reference = built(fast_model)
    assert reference.checkpoint.exists()
    assert reference.checkpoint.is_relative_to(reference.folder)
    for key, value in reference.options.items():
        if value != reference.model.convert_options[key]:
            path = Path(value.rsplit(":", 1)[0] if ".py:" in value else value)
            assert (
                path.is_absolute() and path.is_file() and path.is_relative_to(reference.folder)
            ), (key, value)


def test_outlink_topic_model_class_option_is_made_absolute(
    built: Callable[[str], BuiltReference],
) -> None:
    reference = built("outlink-topic")
    assert (
        reference.options["model_class"]
        == f"{reference.folder / 'outlink_topic.py'}:OutlinkTopicModel"
    )
