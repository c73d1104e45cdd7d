"""Generation evidence that cannot be vacuous: empty outputs, broken variants, beam identity."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.generation import TextScores, content_rows, stop_ids, vacuous
from benchmarks.generators import generation_failures
from benchmarks.parity import DEFAULT_BUDGETS
from convert_model import ParityError, convert
from convert_model.core.names import BASELINE
from convert_model.stages.generation import _choose
from optimizers.select import COULD_NOT_RUN
from tests.convert_model.stages.test_generation import FAST, _variant
from tests.fixtures.models import Zoo


def test_vacuous_when_every_row_is_padding_or_eos():
    stops = stop_ids(0, (2, 3), None)
    assert stops == {0, 2, 3}
    assert vacuous([np.array([2]), np.array([], np.int64), np.array([3, 0, 0])], stops)
    assert not vacuous([np.array([2]), np.array([7, 2])], stops)
    assert content_rows([np.array([2]), np.array([7, 2]), np.array([5])], stops) == 2


def test_judge_fails_identity_with_a_vacuous_original():
    failures = generation_failures(greedy=1.0, beam=1.0, exact=True,
                                   budget=DEFAULT_BUDGETS[BASELINE], scores=None, original=None,
                                   metric=None, vacuous=True)
    assert failures == ("the original generated only padding/EOS: token identity is vacuous",)


def test_judge_bounds_int8_top_beam_identity_even_with_a_good_metric():
    scores = TextScores(token_agreement=0.9, exact_match=0.8, chrf=80.0)
    failures = generation_failures(greedy=1.0, beam=1 / 3, exact=False,
                                   budget=DEFAULT_BUDGETS["int8"], scores=scores,
                                   original=scores, metric="token_agreement")
    assert failures == ("top beam identical 33.3% < 75%",)


def test_choose_says_could_not_run_apart_from_outside_the_budget():
    fp32 = _variant(BASELINE, 1.0)
    broken = replace(_variant("int8", 0.0), latency=None,
                     failures=(f"{COULD_NOT_RUN}Fail: bad graph",))
    lossy = _variant("int8-decoder", 0.5, failures=("top beam identical 10.0% < 75%",))
    _, decided = _choose([fp32, broken, lossy])
    reasons = {v.name: v.reason for v in decided}
    assert reasons["int8"] == "could not run: Fail: bad graph"
    assert reasons["int8-decoder"].startswith("outside the accuracy budget: top beam")


@pytest.fixture(scope="module")
def eos_only_gpt2(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT-2 whose logits are constant: it always picks one token, made its EOS and pad."""
    import torch
    from transformers import GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("eos-only") / "gpt2"
    shutil.copytree(model_zoo.gpt2, folder)
    model = GPT2LMHeadModel.from_pretrained(folder)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()  # the last hidden state is ln_f's bias
        model.transformer.ln_f.bias.copy_(torch.linspace(-1, 1, model.config.n_embd))
        token = int((model.lm_head.weight @ model.transformer.ln_f.bias).argmax())
    model.config.eos_token_id = model.config.pad_token_id = token
    model.generation_config.eos_token_id = model.generation_config.pad_token_id = token
    model.save_pretrained(folder)
    return folder


def test_generation_of_only_eos_is_flagged_vacuous_and_fails(eos_only_gpt2: Path,
                                                             tmp_path: Path, capsys):
    out = tmp_path / "bundle"
    with pytest.raises(ParityError) as info:
        convert(eos_only_gpt2, out=out, precision="fp32", **FAST)
    generation = json.loads((out / "manifest.json").read_text())["generation"]
    assert generation["vacuous"] is True and generation["status"] == "fail"
    assert generation["recommended"] is None
    assert any("token identity is vacuous" in line for line in info.value.failures)
    assert "generates only padding/end-of-sequence tokens" in capsys.readouterr().err
