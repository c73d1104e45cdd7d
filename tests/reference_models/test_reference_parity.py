"""Every registered reference model converts from its handoff form with parity in budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import reference_models
from benchmarks.latency import LatencyConfig
from convert_model import convert
from reference_models import BuiltReference

FAST = LatencyConfig(warmup=1, rounds=3)

# How each reference model is converted here. Readability (BERT-base) runs fp32 only: the
# int8 figures for it come from the benchmark suite, not the unit tests.
PARITY_OPTIONS: dict[str, dict[str, object]] = {
    "revertrisk-multilingual": {},
    "readability": {"precision": "fp32"},
    "outlink-topic": {},
    "logo-detection": {"precision": "fp32"},
    "article-descriptions": {"precision": "fp32"},
    "revertrisk-language-agnostic": {},
    "articlequality": {},
    "revertrisk-catboost": {},
    "outlink-topic-fasttext": {},
    # Its int8 behaviour is checked on a small outlier BERT in tests/optimizers; here fp32.
    "sentence-outliers": {"precision": "fp32"},
}


def test_every_registered_reference_model_has_a_parity_test():
    assert set(reference_models.names()) == set(PARITY_OPTIONS), (
        "a reference model was registered without a parity test (or a test outlived its model)"
    )


@pytest.fixture(scope="module")
def reference_home(reference_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CONVERT_MODEL_CACHE whose reference/ folder is the session's build cache."""
    home = tmp_path_factory.mktemp("convert-model-cache")
    (home / "reference").symlink_to(reference_cache, target_is_directory=True)
    return home


@pytest.mark.parametrize("name", sorted(PARITY_OPTIONS))
def test_reference_model_converts_with_parity(name: str, built: Callable[[str], BuiltReference],
                                              reference_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch):
    reference = built(name)
    monkeypatch.setenv("CONVERT_MODEL_CACHE", str(reference_home))
    out = tmp_path / "bundle"
    result = convert(f"reference:{name}", out=out, latency=FAST, sweep="off",
                     **PARITY_OPTIONS[name])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "pass", result.failures
    assert manifest["source"]["form"] == reference.model.form
    fp32 = manifest["variants"][0]
    assert fp32["name"] == "fp32" and fp32["status"] == "pass"
    if name == "article-descriptions":  # its metric reads generated text: the generation stage
        generation = manifest["generation"]
        assert generation["status"] == "pass" and generation["labelled"]
        fp32_generation = generation["variants"][0]
        assert fp32_generation["greedy_identical"] == 1.0
        assert fp32_generation["beam_identical"] >= 0.98
        score = fp32_generation["scores"][reference.model.metric]
        assert score == generation["original"]["scores"][reference.model.metric]
        assert score > reference.model.chance
    else:
        assert manifest["measurement"]["eval"]["metric"] == reference.model.metric
        assert fp32["task_metric"] == pytest.approx(
            manifest["measurement"]["original"]["task_metric"], abs=1e-3)
        assert fp32["task_metric"] > reference.model.chance
    recommended = next(v for v in manifest["variants"] if v["name"] == manifest["recommended"])
    assert recommended["status"] == "pass"
