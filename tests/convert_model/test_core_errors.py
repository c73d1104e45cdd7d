"""Error lines a user reads: the cause, without terminal escapes or the exporter's banner."""

from __future__ import annotations

from convert_model.core.errors import first_line, plain, summary

TORCH_EXPORT_TEXT = (
    "Failed to export the model with torch.export. \x1b[96mThis is step 1/3\x1b[0m of "
    "exporting the model to ONNX. Next steps:\n- Modify the model code.\n\n"
    "## Exception summary\n\n<class 'torch.fx.experimental.symbolic_shapes."
    "GuardOnDataDependentSymNode'>: Could not extract specialized integer from "
    "data-dependent expression u0\n\n\nCaused by: (model.py:13 in forward)\n"
    'For more information, run with TORCH_LOGS="dynamic"\n'
)


def test_plain_removes_terminal_escapes():
    assert plain("\x1b[96mstep\x1b[0m \x1b]8;;http://x\x07link") == "step link"


def test_summary_names_the_wrapped_cause_with_its_file_and_line():
    assert summary(RuntimeError(TORCH_EXPORT_TEXT)) == (
        "RuntimeError: GuardOnDataDependentSymNode: Could not extract specialized integer "
        "from data-dependent expression u0 (Caused by: (model.py:13 in forward))"
    )


def test_first_line_skips_tracebacks_and_rules():
    text = "\n----------\nTraceback (most recent call last):\n  File \"x.py\", line 1\nboom"
    assert first_line(ValueError(text)) == "boom"
    assert first_line(ValueError("")) == "ValueError"
