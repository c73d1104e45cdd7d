"""What the passes need from the model and the data: fusion settings and calibration inputs."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.evaluate import Inputs
from benchmarks.original import Original
from convert_model.options import ConvertOptions
from converters.export_tabular import TABULAR
from converters.types import LoadedModel
from optimizers.fuse import FuseConfig


def fuse_config_for(loaded: LoadedModel, threads: int | None = None) -> FuseConfig:
    """Fusion settings from the model's config: its type, heads and hidden size.

    With ``threads``, a CPU transformer's SkipLayerNormalization is split back into Add +
    LayerNormalization where that measures clearly faster here (``layernorm_choice_for``).
    """
    config = getattr(loaded.hf_model, "config", None)
    fuse = FuseConfig(
        model_type=loaded.model_type if config is not None else None,
        num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
    )
    choice = None if threads is None else layernorm_choice_for(fuse, threads)
    return fuse if choice is None else dataclasses.replace(fuse,
                                                           split_skip_layernorm=choice.split)


def layernorm_choice_for(fuse: FuseConfig, threads: int) -> LayerNormChoice | None:
    """The SkipLayerNormalization probe for a graph the transformer optimizer fuses, else None."""
    from optimizers.fuse import ort_model_type

    if fuse.hidden_size <= 0 or ort_model_type(fuse.model_type) is None:
        return None
    return layernorm_choice(fuse.hidden_size, threads)


class LayerNormChoice(NamedTuple):
    """SkipLayerNormalization against its split on this machine: p50s, paired ratio, verdict."""

    fused_us: float
    split_us: float
    ratio: str
    split: bool


LAYERNORM_PROBE_TOKENS = 128


@functools.lru_cache(maxsize=8)
def layernorm_choice(hidden: int, threads: int) -> LayerNormChoice:
    """Time one SkipLayerNormalization against Add + LayerNormalization, interleaved.

    Split only when the split is clearly faster (``optimizers.select.clearly_faster`` on the
    paired ratio): a kernel that ties keeps the fusion onnxruntime chose.
    """
    import tempfile

    import numpy as np
    import onnx

    from benchmarks.latency import LatencyConfig, measure_interleaved, versus
    from converters.onnx_graph import runner
    from optimizers.select import clearly_faster
    from optimizers.split_layernorm import probe_graphs

    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal((1, LAYERNORM_PROBE_TOKENS, hidden)).astype(np.float32)
            for name in ("x", "skip")}
    config = LatencyConfig(warmup=5, rounds=30, max_seconds=5.0)
    with tempfile.TemporaryDirectory(prefix="convert-model-layernorm-") as folder:
        runners = {}
        for name, model in zip(("fused", "split"), probe_graphs(hidden, LAYERNORM_PROBE_TOKENS),
                               strict=True):
            path = Path(folder) / f"{name}.onnx"
            onnx.save(model, str(path))
            runners[name] = functools.partial(runner(path, threads), feed)
        timings = measure_interleaved(runners, config)
    paired = versus(timings["split"], timings["fused"], config)
    return LayerNormChoice(fused_us=timings["fused"].p50_ms * 1000,
                           split_us=timings["split"].p50_ms * 1000,
                           ratio=f"{paired.ratio:.2f} [{paired.low:.2f}, {paired.high:.2f}]",
                           split=clearly_faster(paired))


def calibration_batches(options: ConvertOptions, original: Original,
                        input_names: Sequence[str]) -> list[Inputs]:
    """Calibration inputs: the split's calibration part, never rows that judge a variant."""
    from benchmarks.splits import read_sample_data, split_data

    if original.split is not None:
        return list(original.split.calibration or original.examples)  # examples: ranking only
    sample_path = options.eval.sample_data
    sample = read_sample_data(sample_path, input_names) if sample_path else None
    return list(split_data(original.examples, None, sample, options.load.seed).calibration)


def calibrates(options: ConvertOptions, loaded: LoadedModel) -> bool:
    """Whether any candidate preset needs calibration data (static int8)."""
    from optimizers.presets import get_preset

    return any(get_preset(n).needs_calibration for n in candidate_presets(options, loaded))


def candidate_presets(options: ConvertOptions, loaded: LoadedModel) -> tuple[str, ...]:
    """The presets this conversion builds (``optimizers.presets.candidates``)."""
    from optimizers.fuse import ort_model_type
    from optimizers.presets import candidates

    transformer = ort_model_type(fuse_config_for(loaded).model_type) is not None
    return candidates(options.precision, options.preset,
                      tabular=loaded.framework in TABULAR, transformer=transformer)


def activation_ranges(src: Path, calibration: Sequence[Inputs], limit: int = 16,
                      tensors: Sequence[str] | None = None) -> dict[str, Any]:
    """What a smoothing preset needs: each activation's largest ``|x|`` per channel.

    ``tensors``: those to measure; by default every activation ``src`` could smooth.
    """
    from benchmarks.activation_ranges import calibration_ranges
    from optimizers.quantize_static import split_rows
    from optimizers.smooth import smoothable

    wanted = list(tensors) if tensors is not None else list(smoothable(src))
    return calibration_ranges(src, wanted, split_rows(calibration, limit))
