"""One option table for the command line, the Python API and fleet files: names and parsing."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.parity import DEFAULT_BUDGETS, ParityBudget
from benchmarks.sweep import SweepConfig
from convert_model import convert
from convert_model.cli import _convert_parser
from convert_model.core.errors import UsageError
from convert_model.options import BY_NAME, OPTIONS, ConvertOptions, options_from


def _cli_dests() -> set[str]:
    parser = _convert_parser()
    return {a.dest for a in parser._actions
            if a.dest not in ("help", "version", "quiet", "checkpoint")}


def test_options_cli_flags_are_the_api_keywords():
    assert _cli_dests() == {o.name for o in OPTIONS if o.cli}
    for option in OPTIONS:
        assert option.flags[0] == "--" + option.name.replace("_", "-")


def test_options_cli_and_api_build_the_same_options():
    argv = ["ckpt", "--precision", "int8", "--eval-data", "e.npz", "--metric", "accuracy",
            "--accuracy-budget", "int8.min_cosine=0.995", "--export-strategy", "dynamo",
            "--sweep", "off", "--no-generation", "--threads", "2", "--notebook-object", "m",
            "--model-kwargs", '{"hidden": 8}']
    values = vars(_convert_parser().parse_args(argv))
    values.pop("checkpoint"), values.pop("quiet")
    from_cli = options_from(values)
    from_api = options_from({
        "precision": "int8", "eval_data": "e.npz", "metric": "accuracy",
        "accuracy_budget": "int8.min_cosine=0.995", "export_strategy": ["dynamo"],
        "sweep": "off", "no_generation": True, "threads": 2, "notebook_object": "m",
        "model_kwargs": {"hidden": 8},
    })
    assert from_cli == from_api
    assert from_api.budgets["int8"].min_cosine == 0.995
    assert from_api.export.strategies == ("dynamo",) and not from_api.generation.enabled
    assert from_api.load.model_kwargs == {"hidden": 8}


def test_options_defaults_are_the_configs_own():
    empty = vars(_convert_parser().parse_args(["ckpt"]))
    assert set(empty) == {"checkpoint", "quiet"}, "an absent flag takes the config's default"
    assert options_from({}) == ConvertOptions()
    assert options_from({}).sweep == "auto" and options_from({}).budgets == DEFAULT_BUDGETS


def test_options_old_notebook_flags_still_parse():
    values = vars(_convert_parser().parse_args(["nb.ipynb", "--object", "m", "--inputs", "x"]))
    assert values["notebook_object"] == "m" and values["notebook_inputs"] == "x"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sweeps": "off"}, "unknown option"),
        ({"precision": "int4"}, "--precision must be one of"),
        ({"sweep": "1,x"}, "--sweep: must be 'auto', 'off'"),
        ({"model_kwargs": "[1]"}, "--model-kwargs: must be a JSON object"),
        ({"accuracy_budget": "int8.cosine=1"}, "unknown field"),
        ({"export_strategy": ["magic"]}, "--export-strategy must be one of"),
        ({"threads": "two"}, "--threads"),
        ({"eval_data": "e.npz"}, "--eval-data needs --metric"),
        ({"opset": 9}, "opset must be in 14..23"),
    ],
)
def test_options_name_the_bad_value(values: dict, message: str):
    with pytest.raises(UsageError, match=message):
        options_from(values)


def test_options_take_python_objects_for_api_only_names():
    sweep = SweepConfig(batch_sizes=(1,), seq_lens=(8,))
    budget = {"int8": ParityBudget(max_abs_diff=1e-7)}
    options = options_from({"sweep": sweep, "accuracy_budget": budget})
    assert options.sweep is sweep
    assert options.budgets["int8"].max_abs_diff == 1e-7 and options.budgets["fp32"] == \
        DEFAULT_BUDGETS["fp32"]
    assert not BY_NAME["latency"].cli and BY_NAME["precision"].cli


def test_convert_rejects_an_unknown_keyword_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="unknown option"):
        convert(tmp_path / "missing", out=tmp_path / "b", sweeps="off")
    assert not (tmp_path / "b").exists()


def test_options_parser_is_argparse():
    assert isinstance(_convert_parser(), argparse.ArgumentParser)
