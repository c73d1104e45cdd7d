"""What the passes need from the model and the data: fusion settings and calibration inputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.evaluate import Inputs
from benchmarks.original import Original
from convert_model.options import ConvertOptions
from converters.export_tabular import TABULAR
from converters.types import LoadedModel
from optimizers.fuse import FuseConfig


def fuse_config_for(loaded: LoadedModel) -> FuseConfig:
    """Fusion settings from the model's config: its type, heads and hidden size."""
    config = getattr(loaded.hf_model, "config", None)
    return FuseConfig(
        model_type=loaded.model_type if config is not None else None,
        num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
    )


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
