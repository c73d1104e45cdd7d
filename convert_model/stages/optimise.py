"""Stage 4: build every candidate variant and measure its parity."""

from __future__ import annotations

import time
from dataclasses import replace

from convert_model.bundle.manifest import VariantRecord
from convert_model.core.errors import OptimizationError, summary
from convert_model.stages.preparation import (
    activation_ranges,
    calibration_batches,
    candidate_presets,
    fuse_config_for,
    layernorm_choice_for,
)
from convert_model.stages.records import failed_record, measure_parity
from convert_model.state import ConversionState
from optimizers.fuse import FuseConfig


def build_variants(state: ConversionState) -> list[VariantRecord]:
    """Build each candidate preset and measure its parity; failures are recorded, not raised."""
    from optimizers.presets import build, get_preset

    loaded, options, original = state.model, state.options, state.reference
    fuse_config = fuse_config_for(loaded, state.threads)
    _log_layernorm(state, fuse_config)
    calibration = calibration_batches(options, original, loaded.input_names)
    if original.split is not None and original.split.warning:
        state.log(f"warning: {original.split.warning}")
    records = []
    for name in candidate_presets(options, loaded):
        preset = get_preset(name)
        budget = options.budgets[preset.precision]
        try:
            ranges = (activation_ranges(state.exported.path, calibration) if preset.smooth
                      else None)
            variant = build(preset, state.exported.path, state.staging, fuse_config, calibration,
                            ranges=ranges, measure=lambda graph, tensors: activation_ranges(
                                graph, calibration, tensors=tensors))
            record = measure_parity(variant, state.staging, original, budget, state.threads,
                                    options.eval.batch_size)
        except OptimizationError as e:
            state.log(f"{name}: {e}")
            records.append(failed_record(name, preset.precision, preset.device, budget, str(e)))
            continue
        except Exception as e:  # noqa: BLE001  e.g. an fp16 kernel missing on this CPU
            message = f"cannot run on this machine's onnxruntime: {summary(e)}"
            state.log(f"{name}: {message}")
            records.append(failed_record(name, preset.precision, preset.device, budget, message))
            continue
        fusions = record.details.get("fusions")
        state.log(
            f"{name}: {'within budget' if record.passed else 'outside budget'}"
            + (f", task metric {record.task_metric:.4f}" if record.task_metric is not None else "")
            + (f", fusions {dict(fusions)}" if fusions else "")
        )
        records.append(record)
    return records


def _log_layernorm(state: ConversionState, fuse_config: FuseConfig) -> None:
    """Say what the SkipLayerNormalization probe measured, where it ran."""
    choice = layernorm_choice_for(fuse_config, state.threads)
    if choice is None:
        return
    verdict = ("split into Add + LayerNormalization" if choice.split
               else "kept as onnxruntime fuses it")
    state.log(f"SkipLayerNormalization here: {choice.fused_us:.0f} us, as Add + "
              f"LayerNormalization {choice.split_us:.0f} us (paired {choice.ratio}): {verdict}")


def applies(state: ConversionState) -> bool:
    """Not for a broken fp32 graph: there is nothing worth optimising."""
    return state.broken is None


def run(state: ConversionState) -> ConversionState:
    """fp32 plus every candidate preset, each measured; then the int8 search.

    The search's wall-time budget covers the whole stage, the presets built first included.
    """
    from convert_model.stages import int8_search

    started = time.monotonic()
    state = replace(state, records=(*state.records, *build_variants(state)))
    return int8_search.run(state, started)
