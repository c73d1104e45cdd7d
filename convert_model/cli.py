"""The ``convert-model`` command line: a thin layer over ``convert_model.convert``.

Exit codes (DESIGN.md): 0 success; 1 a parity gate failed (bundle written, marked
failed); 2 bad input or usage (one line, no traceback); 3 internal error (traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.metrics import METRICS
from benchmarks.parity import BUDGET_FIELDS
from convert_model.core.errors import ConvertModelError, ParityError, UsageError
from optimizers.presets import PRESETS

if TYPE_CHECKING:
    from benchmarks.sweep import SweepConfig
    from convert_model.bundle.manifest import Manifest

EXIT_OK, EXIT_GATE, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
SUBCOMMANDS = ("verify", "compare", "references")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def _convert_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="convert-model",
        description="Convert a research checkpoint to a validated ONNX bundle. "
        "Other commands: 'convert-model verify OUT', "
        "'convert-model compare NEW_REPORT BASELINE_REPORT'.",
    )
    p.add_argument(
        "checkpoint",
        help="model folder, checkpoint-N/ folder, .safetensors/.pt/.pth/"
        ".bin state_dict, .pt2, TorchScript, .onnx, or reference:NAME",
    )
    p.add_argument(
        "--target", default="onnx", choices=("onnx",), help="output format (default: onnx)"
    )
    p.add_argument("--out", type=Path, help="bundle folder to write (default: ./NAME-onnx)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "int8", "fp16"),
        help="auto: build fp32, fused, int8 and fp16 variants and recommend the fastest within "
        "the accuracy budget; or restrict to one precision (default: auto)",
    )
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="build exactly this recipe instead of the --precision set",
    )
    p.add_argument("--device", default="cpu", choices=("cpu",), help="device to serve on")
    p.add_argument(
        "--eval-data",
        type=Path,
        metavar="FILE",
        help="labelled data: .npz (one array per model input plus 'labels'), .jsonl (one "
        "object per example: each input's value and 'label'), or .csv (one-input models: a "
        "column per feature and 'label'; empty cells are missing)",
    )
    p.add_argument(
        "--metric",
        choices=tuple(METRICS),
        help="task metric for --eval-data",
    )
    p.add_argument("--metric-output", help="model output the metric reads (default: the first)")
    p.add_argument(
        "--sample-data",
        type=Path,
        metavar="FILE.npz",
        help="calibration inputs for static int8 (default: the eval set or the check inputs)",
    )
    p.add_argument(
        "--accuracy-budget",
        metavar="PREC.FIELD=VALUE,...",
        help="override budgets, e.g. 'int8.min_cosine=0.995,fp32.max_abs_diff=1e-3'; fields: "
        + ", ".join(BUDGET_FIELDS),
    )
    p.add_argument(
        "--int8-budget",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wall-time budget of the optimise stage, int8 search included (default: 60)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="threads for onnxruntime and PyTorch (default: the cores this process may use)",
    )
    p.add_argument(
        "--task", help="task for Hugging Face models (default: inferred from config.json)"
    )
    p.add_argument(
        "--input-spec",
        metavar="SPEC",
        help="inputs of a plain module: NAME:DTYPE[DIMS]=SHAPE/SHAPE@LOW..HIGH,...",
    )
    p.add_argument(
        "--model-class",
        metavar="FILE.py:Class|module:Class",
        help="the class a state_dict belongs to",
    )
    p.add_argument(
        "--model-kwargs",
        metavar="JSON",
        default="{}",
        help="keyword arguments for --model-class, as a JSON object",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a Hugging Face model's own code to run",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow unpickling, which can run code hidden in the file",
    )
    p.add_argument("--object", metavar="NAME", help="notebook: the variable holding the model")
    p.add_argument(
        "--inputs",
        metavar="NAME",
        help="notebook: the variable holding example inputs (default: example_inputs, "
        "sample_inputs, sample_input)",
    )
    p.add_argument(
        "--notebook-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="notebook: time limit for running its cells (default: 300)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument(
        "--export-strategy",
        action="append",
        choices=("source-onnx", "onnxmltools", "optimum", "dynamo", "torchscript"),
        dest="strategies",
        help="restrict the export chain (repeatable; default: all, in order)",
    )
    p.add_argument(
        "--sweep",
        metavar="BATCHES[:SEQS]",
        help="latency sweep points, e.g. '1,4,16:16,64,128' (default: that; for tree and "
        "scikit-learn models '1,1000'), or 'off'",
    )
    p.add_argument(
        "--no-generation",
        action="store_false",
        dest="generation",
        help="generative models: skip the export with past key/values and the generation "
        "checks (default: run them for text2text-generation and text-generation)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return p


def _verify_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="convert-model verify",
        description="Re-check a bundle's hashes and re-run parity on its stored inputs.",
    )
    p.add_argument("out", type=Path, help="bundle folder")
    p.add_argument(
        "--data",
        type=Path,
        metavar="FILE.npz",
        help="also run the bundle on these inputs (one array per input); tabular bundles "
        "check the feature count against the input schema",
    )
    return p


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("convert-model")
    except metadata.PackageNotFoundError:
        return "unknown"


def _run_convert(argv: Sequence[str]) -> int:
    args = _convert_parser().parse_args(argv)
    from benchmarks.parity import DEFAULT_BUDGETS, override_budgets
    from convert_model.pipeline import STAGES, ConvertOptions, convert
    from convert_model.progress import Progress

    try:
        model_kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError as e:
        raise UsageError(f"--model-kwargs is not valid JSON ({e})") from e
    try:
        budgets = override_budgets(DEFAULT_BUDGETS, args.accuracy_budget or "")
    except ValueError as e:
        raise UsageError(f"--accuracy-budget: {e}") from e
    options = ConvertOptions(
        target=args.target,
        out=args.out,
        precision=args.precision,
        preset=args.preset,
        device=args.device,
        eval_data=args.eval_data,
        metric=args.metric,
        metric_output=args.metric_output,
        sample_data=args.sample_data,
        threads=args.threads,
        int8_budget_s=args.int8_budget,
        task=args.task,
        input_spec=args.input_spec,
        model_class=args.model_class,
        model_kwargs=model_kwargs,
        trust_remote_code=args.trust_remote_code,
        trust_pickle=args.trust_pickle,
        notebook_object=args.object,
        notebook_inputs=args.inputs,
        notebook_timeout=args.notebook_timeout,
        force=args.force,
        opset=args.opset,
        strategies=tuple(args.strategies) if args.strategies else None,
        budgets=budgets,
        sweep=_sweep_config(args.sweep),
        generation=args.generation,
    )
    progress = Progress(total=STAGES, enabled=not args.quiet)
    result = convert(args.checkpoint, options, progress=progress)
    print(summary(result.manifest, result.out))
    return EXIT_OK


def summary(manifest: Manifest, out: Path) -> str:
    """A few lines for the terminal: where the bundle is and each variant's verdict."""
    lines = [
        f"bundle: {out}",
        f"exported with {manifest.export['strategy']} (opset {manifest.export['opset']}); "
        f"recommended: {manifest.recommended}",
    ]
    for v in manifest.variants:
        speed = f"{v.speedup:.2f}x" if v.speedup else "-"
        metric = f"{v.task_metric:.4f}" if v.task_metric is not None else "-"
        lines.append(
            f"  {v.name:<28} {'pass' if v.passed else 'FAIL':<5} speed-up {speed:<7} "
            f"metric {metric:<7} {v.reason}"
        )
    generation = manifest.generation
    if generation:
        lines.append(f"generation ({generation['split']['kind']}, loop in runtime/): "
                     f"recommended {generation['recommended']}")
        for g in generation["variants"]:
            speed = g["tokens_per_s_speedup"]
            lines.append(
                f"  {g['name']:<28} {'pass' if g['status'] == 'pass' else 'FAIL':<5} "
                f"tokens/s {f'{speed:.2f}x' if speed else '-':<7} "
                f"greedy identical {g['greedy_identical']:.1%}  {g['reason']}"
            )
    return "\n".join(lines)


def _sweep_config(text: str | None) -> SweepConfig | None:
    """``--sweep``: ``off``, or batch sizes and sequence lengths as ``1,4,16:16,64,128``."""
    from benchmarks.sweep import SweepConfig
    from convert_model.pipeline import DEFAULT_SWEEP

    if text is None:
        return DEFAULT_SWEEP
    if text.strip().lower() == "off":
        return None
    batches, _, seqs = text.partition(":")
    try:
        batch_sizes = tuple(int(b) for b in batches.split(",") if b.strip())
        seq_lens = tuple(int(s) for s in seqs.split(",") if s.strip())
        return SweepConfig(batch_sizes=batch_sizes, seq_lens=seq_lens or SweepConfig.seq_lens)
    except ValueError as e:
        raise UsageError(
            f"--sweep must be 'off' or like '1,4,16:16,64,128', got {text!r} ({e})"
        ) from e


def _compare_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="convert-model compare",
        description="Compare a report.json with a baseline one: speed-up ratios (noise-aware) "
        "and parity. Prints a Markdown diff table; exit 1 on a regression.",
    )
    p.add_argument("new", type=Path, help="the new report.json (or its bundle folder)")
    p.add_argument("baseline", type=Path, help="the baseline report.json (or its bundle folder)")
    p.add_argument(
        "--max-slowdown",
        default="10%",
        help="largest tolerated drop of a speed-up, e.g. 10%% or 0.1 (default: 10%%)",
    )
    p.add_argument(
        "--max-parity-drop",
        default="0.001",
        help="largest tolerated drop of min cosine or task metric (default: 0.001)",
    )
    return p


def _run_compare(argv: Sequence[str]) -> int:
    args = _compare_parser().parse_args(argv)
    from benchmarks.compare_reports import compare, parse_fraction
    from benchmarks.report import read_report

    try:
        max_slowdown = parse_fraction(args.max_slowdown)
        max_parity_drop = parse_fraction(args.max_parity_drop)
        result = compare(
            read_report(args.new), read_report(args.baseline), max_slowdown, max_parity_drop
        )
    except ValueError as e:
        if isinstance(e, ConvertModelError):
            raise
        raise UsageError(str(e)) from e
    print(result.markdown())
    return EXIT_OK if result.ok else EXIT_GATE


def _run_verify(argv: Sequence[str]) -> int:
    args = _verify_parser().parse_args(argv)
    from convert_model.bundle.verify import check_data, verify

    result = verify(args.out)
    if result.ok and args.data is not None:
        result = check_data(args.out, args.data)
    if result.ok:
        print(
            f"{args.out}: ok ({len(result.manifest.files)} files, "
            f"{len(result.manifest.variants)} variant(s) within budget)"
        )
        return EXIT_OK
    print(f"{args.out}: verification failed", file=sys.stderr)
    for line in result.problems:
        print(f"  {line}", file=sys.stderr)
    return EXIT_GATE


def _run_references(argv: Sequence[str]) -> int:
    _Parser(prog="convert-model references",
            description="List the built-in reference models (convert one with "
            "'convert-model reference:NAME').").parse_args(argv)
    import reference_models

    width = max(map(len, reference_models.names()), default=0)
    for name in reference_models.names():
        model = reference_models.get(name)
        print(f"{name:<{width}} {model.form:<22} {model.metric:<16} {model.summary}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    sys.stderr.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before torch loads: PyTorch's idle OpenMP threads otherwise spin, and on a busy machine
    # a spinning thread that loses its core stalls the original's calls for a scheduler
    # period, swamping its measured latency (onnxruntime's spinning is off for the same reason).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        if argv and argv[0] == "verify":
            return _run_verify(argv[1:])
        if argv and argv[0] == "compare":
            return _run_compare(argv[1:])
        if argv and argv[0] in ("references", "--list-references"):
            return _run_references(argv[1:])
        return _run_convert(argv)
    except ParityError as e:
        print(f"convert-model: {e}", file=sys.stderr)
        for line in e.failures:
            print(f"  {line}", file=sys.stderr)
        return EXIT_GATE
    except ConvertModelError as e:
        message = " ".join(str(e).split())
        print(f"convert-model: error: {e.stage}: {message}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("convert-model: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001  an unexpected error is a bug: show everything
        traceback.print_exc()
        print(
            "convert-model: internal error; please report it with the traceback above",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
