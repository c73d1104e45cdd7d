"""The pipeline's shape: a loop over stages, each state in and state out, errors named by stage."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from convert_model.cli import main
from convert_model.core.errors import ExportError
from convert_model.options import ConvertOptions
from convert_model.pipeline import STAGES, Stage, run_stages
from convert_model.progress import Progress
from convert_model.state import ConversionState, StageOrderError
from tests.fixtures.models import CUSTOM_SPEC, Zoo


def _state(tmp_path: Path, checkpoint: str = "x") -> ConversionState:
    return ConversionState(checkpoint=checkpoint, options=ConvertOptions(), out=tmp_path / "out",
                           threads=1, progress=Progress(total=1, enabled=False))


def test_stages_are_named_once_each_in_pipeline_order():
    names = [s.name for s in STAGES]
    assert names == ["load", "export", "parity", "optimize", "measure", "generation", "bundle"]
    assert [s.in_bundle for s in STAGES] == [False] + [True] * 6


def test_state_is_frozen_and_says_which_part_is_missing(tmp_path: Path):
    state = _state(tmp_path)
    with pytest.raises(FrozenInstanceError):
        state.threads = 2  # type: ignore[misc]
    with pytest.raises(StageOrderError, match="the exported graph is read before"):
        _ = state.exported


def test_run_stages_names_the_failing_stage_and_leaves_no_bundle(tmp_path: Path):
    def fail(state: ConversionState) -> ConversionState:
        raise ExportError("nothing to export")

    stages = (Stage(name="export", title=lambda s: "export", run=fail),)
    with pytest.raises(ExportError) as info:
        run_stages(_state(tmp_path), stages)
    assert info.value.stage == "export"
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_run_stages_skips_a_stage_that_does_not_apply(tmp_path: Path):
    ran = []

    def note(name: str):
        def run(state: ConversionState) -> ConversionState:
            ran.append(name)
            return replace(state, threads=state.threads + 1)
        return run

    stages = (
        Stage(name="a", title=lambda s: "a", run=note("a"), in_bundle=False),
        Stage(name="b", title=lambda s: "b", run=note("b"), applies=lambda s: False,
              in_bundle=False),
        Stage(name="c", title=lambda s: "c", run=note("c"), in_bundle=False),
    )
    assert run_stages(_state(tmp_path), stages).threads == 3 and ran == ["a", "c"]


def test_cli_error_line_names_the_stage(model_zoo: Zoo, tmp_path: Path, capsys):
    code = main([str(model_zoo.custom_safetensors), "--out", str(tmp_path / "b"),
                 "--model-class", f"{model_zoo.model_file}:TinyTagger",
                 "--input-spec", CUSTOM_SPEC, "--export-strategy", "optimum", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("convert-model: error: export: no export strategy succeeded")
    assert not (tmp_path / "b").exists()
