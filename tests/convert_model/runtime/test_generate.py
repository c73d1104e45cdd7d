"""The numpy/onnxruntime generation loop: token identity with transformers' generate."""

from __future__ import annotations

import ast
import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convert_model.core.quiet import quiet
from convert_model.runtime import GenerationSettings, Generator
from converters.export_generation import export_generation

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RUNTIME = Path(__file__).resolve().parents[3] / "convert_model" / "runtime"
VOCAB = 128
STD = 0.5  # wide enough init that tiny models' tokens depend on their inputs
LENGTHS = (7, 4, 2)  # a padded batch: rows of different lengths
MAX_NEW = 12


def _bart() -> Any:
    return transformers.BartForConditionalGeneration(transformers.BartConfig(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, init_std=STD,
    ))


def _mbart() -> Any:
    # mBART-50: the decoder starts from EOS, then the target language code is forced.
    return transformers.MBartForConditionalGeneration(transformers.MBartConfig(
        vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, init_std=STD,
        decoder_start_token_id=2, forced_bos_token_id=VOCAB - 20,
    ))


def _t5() -> Any:
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, decoder_start_token_id=0, initializer_factor=25.0,
    ))


def _gpt2() -> Any:
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=128,
        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1, initializer_range=STD,
    ))


def _llama() -> Any:
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        initializer_range=STD, bos_token_id=1, eos_token_id=2,
    ))


MODELS: dict[str, tuple[Callable[[], Any], str]] = {
    "bart": (_bart, "text2text-generation"),
    "mbart": (_mbart, "text2text-generation"),
    "t5": (_t5, "text2text-generation"),
    "gpt2": (_gpt2, "text-generation"),
    "llama": (_llama, "text-generation"),
}
ENCODER_DECODERS = ("bart", "mbart", "t5")


@dataclass
class Case:
    model: Any
    folder: Path
    generator: Generator
    input_ids: np.ndarray
    attention_mask: np.ndarray

    def reference(self, **kwargs: Any) -> np.ndarray:
        with torch.inference_mode(), quiet():
            out = self.model.generate(
                input_ids=torch.from_numpy(self.input_ids),
                attention_mask=torch.from_numpy(self.attention_mask), do_sample=False, **kwargs,
            )
        return out.numpy()

    def assert_matches(self, **kwargs: Any) -> np.ndarray:
        expected = self.reference(**kwargs)
        got = self.generator.generate(self.input_ids, self.attention_mask, **kwargs)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
        return got


class Zoo:
    """Builds and exports each tiny model on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: dict[str, Case] = {}

    def __getitem__(self, name: str) -> Case:
        if name not in self.cases:
            factory, task = MODELS[name]
            torch.manual_seed(0)
            model = factory().eval()
            folder = self.root / name
            # optimum's export sets config.use_cache on every submodule (T5's encoder included)
            # and leaves it set; export a copy so the reference model stays as built.
            with quiet():
                export_generation(copy.deepcopy(model), folder, task=task)
            generator = Generator(folder, threads=1)
            ids, mask = _padded_batch(generator, left=task == "text-generation")
            self.cases[name] = Case(model, folder, generator, ids, mask)
        return self.cases[name]


def _padded_batch(generator: Generator, *, left: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    width = max(LENGTHS)
    ids = np.full((len(LENGTHS), width), generator.settings.pad_or_eos or 0, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(LENGTHS):
        span = slice(width - length, width) if left else slice(0, length)
        ids[row, span] = rng.integers(3, VOCAB - 30, length)
        mask[row, span] = 1
    return ids, mask


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoo]:
    # One torch thread: tiny models gain nothing from more, and lose much on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield Zoo(tmp_path_factory.mktemp("runtime"))
    finally:
        torch.set_num_threads(threads)


def _mid_sequence_eos(case: Case) -> int:
    """A token some rows generate mid-way and others do not, so rows finish at different steps."""
    generated = case.reference(max_new_tokens=MAX_NEW)[:, -MAX_NEW + 2:]
    counts = {int(t): int((generated == t).any(axis=1).sum()) for t in np.unique(generated)}
    return min(counts, key=lambda t: (counts[t], t))


@pytest.mark.parametrize("name", list(MODELS))
def test_generator_matches_transformers_greedy_when_batch_is_padded(zoo: Zoo, name: str):
    case = zoo[name]
    case.assert_matches(max_new_tokens=MAX_NEW)
    out = case.assert_matches(max_new_tokens=MAX_NEW, eos_token_id=_mid_sequence_eos(case))
    assert out.shape[0] == len(LENGTHS)


@pytest.mark.parametrize("name", list(MODELS))
def test_generator_matches_transformers_beam_search(zoo: Zoo, name: str):
    case = zoo[name]
    case.assert_matches(max_new_tokens=MAX_NEW, num_beams=4)
    case.assert_matches(max_new_tokens=MAX_NEW, num_beams=3, eos_token_id=_mid_sequence_eos(case))


@pytest.mark.parametrize(("name", "settings"), [
    ("bart", {"num_beams": 4, "length_penalty": 2.0, "early_stopping": True}),
    ("mbart", {"num_beams": 3, "early_stopping": "never", "length_penalty": 0.5}),
    ("t5", {"num_beams": 3, "no_repeat_ngram_size": 2}),
    ("gpt2", {"num_beams": 4, "repetition_penalty": 1.5, "length_penalty": -1.0}),
    ("llama", {"no_repeat_ngram_size": 2, "repetition_penalty": 1.3, "min_new_tokens": 6}),
    ("bart", {"min_length": 8, "no_repeat_ngram_size": 3}),
])
def test_generator_matches_transformers_when_settings_vary(zoo: Zoo, name: str,
                                                           settings: dict[str, Any]):
    case = zoo[name]
    eos = _mid_sequence_eos(case)
    case.assert_matches(max_new_tokens=MAX_NEW, eos_token_id=eos, **settings)
    # Several EOS ids: beam search keeps (1 + n_eos) * num_beams candidates.
    case.assert_matches(max_new_tokens=MAX_NEW, eos_token_id=[eos, 3], **settings)


@pytest.mark.parametrize("name", ["bart", "llama"])
def test_generator_matches_transformers_when_longer_than_export_dummy_length(zoo: Zoo, name: str):
    case = zoo[name]
    # min_new_tokens masks EOS until the end: 40 new tokens, past the export's dummy lengths.
    out = case.assert_matches(max_new_tokens=40, min_new_tokens=40)
    assert out.shape[1] == (1 if name in ENCODER_DECODERS else max(LENGTHS)) + 40
    case.assert_matches(max_new_tokens=40, min_new_tokens=40, num_beams=3)


def test_generator_matches_transformers_when_lengths_and_mask_are_defaults(zoo: Zoo):
    case = zoo["bart"]
    with torch.inference_mode(), quiet():
        expected = case.model.generate(input_ids=torch.from_numpy(case.input_ids)).numpy()
    # No mask: inferred from pad_token_id; no max_new_tokens: 20 new tokens.
    np.testing.assert_array_equal(case.generator.generate(case.input_ids), expected)


def test_generator_matches_transformers_when_decoder_is_unmerged(zoo: Zoo, tmp_path: Path):
    from optimum.exporters.onnx.convert import onnx_export_from_model

    case = zoo["bart"]
    with quiet():
        onnx_export_from_model(
            copy.deepcopy(case.model), tmp_path, task="text2text-generation-with-past",
            do_validation=False, no_post_process=True, device="cpu",
        )
    generator = Generator(tmp_path, threads=1)
    assert generator.files == {
        "encoder": "encoder_model.onnx", "decoder_first": "decoder_model.onnx",
        "decoder_with_past": "decoder_with_past_model.onnx",
    }
    for beams in (1, 4):
        expected = case.reference(max_new_tokens=MAX_NEW, num_beams=beams)
        got = generator.generate(case.input_ids, case.attention_mask, max_new_tokens=MAX_NEW,
                                 num_beams=beams)
        np.testing.assert_array_equal(got, expected)


def test_generator_takes_explicit_files_and_config_folder(zoo: Zoo, tmp_path: Path):
    case = zoo["mbart"]
    shutil.copy(case.folder / "encoder_model.onnx", tmp_path / "enc.onnx")
    shutil.copy(case.folder / "decoder_model_merged.onnx", tmp_path / "dec.onnx")
    files = {"encoder": "enc.onnx", "decoder": "dec.onnx"}
    generator = Generator(tmp_path, files=files, config_folder=case.folder, threads=1)
    assert generator.kind == "encoder-decoder" and generator.settings == case.generator.settings
    got = generator.generate(case.input_ids, case.attention_mask, max_new_tokens=MAX_NEW)
    np.testing.assert_array_equal(got, case.reference(max_new_tokens=MAX_NEW))
    with pytest.raises(ValueError, match=r"files must map one of the role sets .* got \['dec'\]"):
        Generator(tmp_path, files={"dec": "dec.onnx"}, config_folder=case.folder)
    with pytest.raises(FileNotFoundError, match="holds no generation graphs"):
        Generator(tmp_path)


@pytest.mark.parametrize(("name", "beams"), [("bart", 1), ("bart", 3), ("llama", 1), ("llama", 3)])
def test_generator_feeds_past_one_longer_each_step(zoo: Zoo, monkeypatch: pytest.MonkeyPatch,
                                                   name: str, beams: int):
    case = zoo[name]
    session = case.generator.sessions["decoder"]
    feeds: list[dict[str, tuple[int, ...]]] = []
    original = session.run

    def recording_run(names: Any, feed: dict[str, np.ndarray], *args: Any) -> Any:
        feeds.append({k: v.shape for k, v in feed.items()})
        if "use_cache_branch" in feed:
            feeds[-1]["use_cache_branch"] = (bool(feed["use_cache_branch"][0]),)
        return original(names, feed, *args)

    monkeypatch.setattr(session, "run", recording_run)
    steps: list[int] = []
    case.generator.generate(case.input_ids, case.attention_mask, max_new_tokens=20,
                            min_new_tokens=20, num_beams=beams, on_step=steps.append)
    assert steps == list(range(20)) and len(feeds) == 20
    rows, width = len(LENGTHS) * beams, max(LENGTHS)
    if name in ENCODER_DECODERS:
        self_key, cross_key = "past_key_values.0.decoder.key", "past_key_values.0.encoder.key"
        assert [f["use_cache_branch"] for f in feeds] == [(False,)] + [(True,)] * 19
        assert [f[self_key][2] for f in feeds] == list(range(20))
        # Cross-attention past: empty on the first step, then the encoder's length throughout.
        assert [f[cross_key][2] for f in feeds] == [0] + [width] * 19
        assert {f["encoder_hidden_states"][0] for f in feeds} == {rows}
    else:
        key = "past_key_values.1.key"
        assert [f[key][2] for f in feeds] == [0] + list(range(width, width + 19))
        assert [f["attention_mask"][1] for f in feeds] == list(range(width, width + 20))
        assert [f["input_ids"][1] for f in feeds] == [width] + [1] * 19
        # Grouped-query attention: the past has the key/value heads, not the query heads.
        assert {f[key][1] for f in feeds} == {case.model.config.num_key_value_heads}
    assert {f["input_ids"][0] for f in feeds} == {rows}


def test_generator_rejects_sampling_settings(zoo: Zoo, tmp_path: Path):
    case = zoo["gpt2"]
    with pytest.raises(ValueError, match=r"cannot honour: do_sample=True"):
        case.generator.generate(case.input_ids, case.attention_mask, do_sample=True)
    with pytest.raises(ValueError, match=r"cannot honour: num_beam_groups=2"):
        case.generator.generate(case.input_ids, num_beam_groups=2, num_beams=4)
    with pytest.raises(ValueError, match=r"unknown generation settings \['max_tokens'\]"):
        case.generator.generate(case.input_ids, max_tokens=3)
    # Neutral values of unsupported settings are accepted, as in transformers' call.
    case.generator.generate(case.input_ids, case.attention_mask, do_sample=False, max_new_tokens=2)

    folder = tmp_path / "sampling"
    shutil.copytree(case.folder, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=0.7)
    (folder / "generation_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"do_sample=True, temperature=0\.7"):
        Generator(folder)


def test_generation_settings_fall_back_to_config_json(zoo: Zoo, tmp_path: Path):
    case = zoo["mbart"]
    for name in ("encoder_model.onnx", "decoder_model_merged.onnx"):
        shutil.copy(case.folder / name, tmp_path / name)
    # An older checkpoint: generation keys in config.json (null ones count as unset).
    config = json.loads((case.folder / "config.json").read_text())
    config.update(json.loads((case.folder / "generation_config.json").read_text()))
    config.update(num_beams=None, do_sample=None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    generator = Generator(tmp_path)
    assert generator.settings == case.generator.settings
    assert generator.settings.forced_bos_token_id == VOCAB - 20
    assert generator.settings.decoder_start_token_id == 2


def test_generation_settings_plan_caps_default_length_at_max_positions():
    def max_length(prompt: int, *, given: bool = False) -> int:
        plan = GenerationSettings().plan(prompt_length=prompt, max_length_given=given,
                                         max_positions=128)
        return plan.max_length

    assert max_length(5) == 25  # transformers' default: 20 new tokens
    assert max_length(120) == 128
    assert max_length(5, given=True) == 20
    with pytest.raises(ValueError, match="early_stopping must be one of"):
        GenerationSettings(early_stopping="sometimes")
    with pytest.raises(ValueError, match="num_beams must be an int >= 1, got 0"):
        GenerationSettings(num_beams=0)


def test_runtime_imports_only_stdlib_numpy_onnxruntime():
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime"}
    offenders = []
    for path in sorted(RUNTIME.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level > 0 else [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in allowed]
    assert offenders == []


def test_runtime_generates_from_a_bundle_copy_without_torch(zoo: Zoo, tmp_path: Path):
    case = zoo["llama"]
    shutil.copytree(RUNTIME, tmp_path / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    script = f"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"torch", "transformers", "optimum", "convert_model",
                                   "converters", "optimizers"}}:
            raise ImportError(f"blocked {{name}}")
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(tmp_path)!r})
import numpy as np
from runtime import Generator
ids = np.array({case.input_ids.tolist()}); mask = np.array({case.attention_mask.tolist()})
out = Generator({str(case.folder)!r}, threads=1).generate(ids, mask, max_new_tokens=5, num_beams=2)
print(json.dumps(out.tolist()))
"""
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = case.generator.generate(case.input_ids, case.attention_mask, max_new_tokens=5,
                                       num_beams=2)
    assert json.loads(result.stdout) == expected.tolist()
