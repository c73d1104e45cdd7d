"""What the passes need from the model and the data: fusion settings and calibration inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmarks.evaluate import Inputs
from benchmarks.original import Original
from convert_model.core.errors import UsageError
from convert_model.options import ConvertOptions
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
    """Calibration inputs: ``--sample-data``, else the eval set's head, else the check inputs."""
    sample = options.eval.sample_data
    if sample is not None:
        try:
            with np.load(sample, allow_pickle=False) as data:
                batch = {n: data[n] for n in input_names if n in data.files}
        except (OSError, ValueError) as e:
            raise UsageError(f"{sample}: cannot read sample data ({e})") from e
        missing = [n for n in input_names if n not in batch]
        if missing:
            raise UsageError(f"{sample}: sample data lacks inputs {missing}")
        return [batch]
    if original.eval_set is not None:
        return [original.eval_set.head(64)]
    return list(original.examples)
