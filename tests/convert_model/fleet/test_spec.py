"""FLEET.yaml validation: every error names the file, the entry and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from convert_model.core.errors import UsageError
from convert_model.fleet.spec import load_fleet
from convert_model.options import options_from


def fleet(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "eval.csv").write_text("a,label\n1,0\n", encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(UsageError) as caught:
        load_fleet(fleet(tmp_path, text))
    return str(caught.value)


def test_load_fleet_resolves_paths_and_converts_option_values(tmp_path: Path):
    spec = load_fleet(fleet(tmp_path, """
root: out
ray_data_rows: 50
defaults: {precision: fp32, sweep: off}
models:
  - checkpoint: reference:articlequality
    options: {threads: 2, eval_data: eval.csv, metric: accuracy, sweep: "1,4:16"}
  - name: plain
    checkpoint: model.onnx
    options: {accuracy_budget: "int8.min_cosine=0.995", export_strategy: source-onnx}
"""))
    assert spec.root == (tmp_path / "out").resolve() and spec.ray_data_rows == 50
    first, second = spec.models
    assert first.name == "articlequality" and first.threads == 2
    assert first.options["eval_data"] == (tmp_path / "eval.csv").resolve()
    first_options, second_options = (options_from(m.options) for m in spec.models)
    assert first_options.sweep.batch_sizes == (1, 4)  # type: ignore[union-attr]
    assert first_options.precision == "fp32"
    assert second.checkpoint == str((tmp_path / "model.onnx").resolve())
    assert second_options.sweep == "off" and second.threads == 1
    assert second_options.budgets["int8"].min_cosine == 0.995
    assert second_options.export.strategies == ("source-onnx",)
    assert first.digest != second.digest


def test_load_fleet_digest_changes_when_an_option_changes(tmp_path: Path):
    text = "root: out\nmodels:\n  - checkpoint: model.onnx\n    options: {opset: %d}\n"
    a = load_fleet(fleet(tmp_path, text % 17)).models[0].digest
    b = load_fleet(fleet(tmp_path, text % 18)).models[0].digest
    assert a != b


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: []\n", "root: must be the output folder"),
        ("root: out\nmodels: []\n", "models: must be a non-empty list"),
        ("root: out\nextra: 1\nmodels: [{checkpoint: model.onnx}]\n", "extra: unknown key"),
        ("root: out\nray_data_rows: 0\nmodels: [{checkpoint: model.onnx}]\n",
         "ray_data_rows: must be a whole number >= 1"),
        ("root: out\nmodels: [{checkpoint: missing.onnx}]\n",
         "models[0] (missing.onnx): checkpoint: "),
        ("root: out\nmodels: [{checkpoint: 'reference:nope'}]\n",
         "checkpoint: unknown reference model 'nope'"),
        ("root: out\nmodels: [{checkpoint: model.onnx, precision: fp32}]\n",
         "models[0] (model.onnx): precision: unknown key (convert options go under 'options')"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {precison: fp32}}]\n",
         "models[0] (model.onnx): options.precison: unknown option; known: target"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {precision: fp64}}]\n",
         "models[0] (model.onnx): options.precision: --precision must be one of"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {out: x}}]\n",
         "options.out: cannot be set in a fleet file"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {eval_data: eval.csv}}]\n",
         "options.eval_data: --eval-data needs --metric"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {threads: 0}}]\n",
         "options.threads: --threads must be between 1 and"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {sweep: 'a:b'}}]\n",
         "options.sweep: --sweep: must be 'auto', 'off'"),
        ("root: out\nmodels: [{checkpoint: model.onnx, options: {accuracy_budget: 'int9.x=1'}}]\n",
         "options.accuracy_budget: --accuracy-budget: unknown precision 'int9'"),
        ("root: out\ndefaults: {preset: nope}\nmodels: [{checkpoint: model.onnx}]\n",
         "defaults.preset: --preset must be one of"),
        ("root: out\nmodels: [{checkpoint: model.onnx}, {checkpoint: model.onnx}]\n",
         "models[1] (model): name: already used by models[0]"),
        ("root: out\nmodels: [{checkpoint: model.onnx, name: 'a/b'}]\n", "name: must match"),
        ("root: [unclosed\n", "not valid YAML"),
    ],
)
def test_load_fleet_names_the_entry_and_field_at_fault(tmp_path: Path, text: str, expected: str):
    message = error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'fleet.yaml'}: ")
    assert expected in message


def test_fleet_command_exits_2_with_one_line_for_a_bad_fleet_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from convert_model.cli import main

    path = fleet(tmp_path, "root: out\nmodels: [{checkpoint: model.onnx, options: {opset: x}}]\n")
    assert main(["fleet", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models[0] (model.onnx): options.opset" in err
    assert not (tmp_path / "out").exists()


def test_fleet_command_exits_2_without_a_fleet_file_or_root(capsys: pytest.CaptureFixture[str]):
    from convert_model.cli import main

    assert main(["fleet"]) == 2
    assert "needs FLEET.yaml or --verify ROOT" in capsys.readouterr().err
