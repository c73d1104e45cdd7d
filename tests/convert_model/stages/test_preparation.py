"""What the passes get from the trunk: the SkipLayerNormalization choice, measured here."""

from __future__ import annotations


def test_layernorm_choice_times_both_kernels_and_decides_on_the_paired_ratio():
    from convert_model.stages.preparation import layernorm_choice

    choice = layernorm_choice(32, 1)
    assert choice.fused_us > 0 and choice.split_us > 0
    low, high = (float(x) for x in choice.ratio.split("[")[1].rstrip("]").split(", "))
    # Split only with the whole interval below one: the rule, whichever way this CPU goes.
    assert not choice.split or high < 1.0
    assert layernorm_choice(32, 1) is choice  # measured once per conversion process
