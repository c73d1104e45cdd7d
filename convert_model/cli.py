"""The ``convert-model`` command line: a thin layer over ``convert_model.convert``.

Exit codes (DESIGN.md): 0 success; 1 a parity gate failed (bundle written, marked
failed); 2 bad input or usage (one line, no traceback); 3 internal error (traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convert_model.cli_parser import LineParser
from convert_model.core.errors import ConvertModelError, ParityError, UsageError
from convert_model.core.signals import Terminated, terminate_as_interrupt
from convert_model.core.text import one_line, printable

if TYPE_CHECKING:
    from convert_model.bundle.manifest import Manifest

EXIT_OK, EXIT_GATE, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_HARDWARE = 4  # compare: the reports were measured on different ISAs or thread counts
SUBCOMMANDS = ("verify", "compare", "references", "serve", "fleet")


def _convert_parser() -> argparse.ArgumentParser:
    from convert_model.options import OPTIONS

    p = LineParser(
        prog="convert-model",
        description="Convert a research checkpoint to a validated ONNX bundle. "
        "Other commands: 'convert-model verify OUT', "
        "'convert-model compare NEW_REPORT BASELINE_REPORT', 'convert-model references'. "
        "Every option below is also a keyword of the Python API convert() (with _ for -).",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "checkpoint",
        help="model folder, checkpoint-N/ folder, .safetensors/.pt/.pth/"
        ".bin state_dict, .pt2, TorchScript, .onnx, XGBoost .json/.ubj, LightGBM .txt, "
        "scikit-learn .skops, CatBoost .cbm, fastText supervised .bin, sentence-transformers "
        "folder (modules.json), Keras 3 .keras, or reference:NAME",
    )
    for option in OPTIONS:
        if not option.cli:
            continue
        kwargs: dict[str, Any] = {"help": option.help, "dest": option.name}
        if option.flag:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = option.metavar
            kwargs["choices"] = option.choices
            if option.repeat:
                kwargs["action"] = "append"
        p.add_argument(*option.flags, **kwargs)
    p.add_argument("-q", "--quiet", action="store_true", default=False, help="no progress lines")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return p


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("convert-model")
    except metadata.PackageNotFoundError:
        return "unknown"


def _run_convert(argv: Sequence[str]) -> int:
    args = vars(_convert_parser().parse_args(argv))
    from convert_model.pipeline import STAGES, convert
    from convert_model.progress import Progress

    checkpoint, quiet = args.pop("checkpoint"), args.pop("quiet")
    progress = Progress(total=len(STAGES) - 1, enabled=not quiet)
    result = convert(checkpoint, progress=progress, **args)
    print("\n".join(map(printable, summary(result.manifest, result.out).splitlines())))
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
        lines.append(f"generation ({generation.split['kind']}, loop in runtime/): "
                     f"recommended {generation.recommended}")
        for g in generation.variants:
            tokens = f"{g.speedup:.2f}x" if g.speedup else "-"
            lines.append(
                f"  {g.name:<28} {'pass' if g.passed else 'FAIL':<5} "
                f"tokens/s {tokens:<7} "
                f"greedy identical {g.greedy_identical or 0.0:.1%}  {g.reason}"
            )
    return "\n".join(lines)


def _compare_parser() -> argparse.ArgumentParser:
    p = LineParser(
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
    p.add_argument(
        "--allow-different-hardware",
        action="store_true",
        help="compare reports measured on different instruction sets or thread counts "
        "(default: exit 4 naming the difference)",
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
    if result.hardware and not args.allow_different_hardware:
        print(f"convert-model: compare: {args.new} and {args.baseline} were measured on "
              f"different hardware ({'; '.join(result.hardware)}); speed-ups do not compare "
              "(--allow-different-hardware compares anyway)", file=sys.stderr)
        return EXIT_HARDWARE
    print(result.markdown())
    return EXIT_OK if result.ok else EXIT_GATE


def _run_verify(argv: Sequence[str]) -> int:
    from convert_model.bundle import verify_command

    parser = LineParser(prog="convert-model verify", description=verify_command.DESCRIPTION)
    args = verify_command.add_arguments(parser).parse_args(argv)
    code = verify_command.run(args)
    if code == EXIT_OK and args.server:  # the bundle holds; now what its server answers
        from convert_model.cli_serve import run_verify_server

        return run_verify_server(args.out, args.server)
    return code


def _run_references(argv: Sequence[str]) -> int:
    LineParser(prog="convert-model references",
            description="List the built-in reference models (convert one with "
            "'convert-model reference:NAME').").parse_args(argv)
    import reference_models

    width = max(map(len, reference_models.names()), default=0)
    for name in reference_models.names():
        model = reference_models.get(name)
        print(f"{name:<{width}} {model.form:<22} {model.metric:<16} {model.summary}")
    return EXIT_OK


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "verify":
        return _run_verify(argv[1:])
    if argv and argv[0] == "serve":
        from convert_model.cli_serve import run_serve

        return run_serve(argv[1:], LineParser)
    if argv and argv[0] == "compare":
        return _run_compare(argv[1:])
    if argv and argv[0] == "fleet":
        from convert_model.fleet.cli import main as fleet_main

        return fleet_main(argv[1:])
    if argv and argv[0] in ("references", "--list-references"):
        return _run_references(argv[1:])
    return _run_convert(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    sys.stderr.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with terminate_as_interrupt():  # SIGTERM unwinds like Ctrl-C: temp folders go
            code = _dispatch(argv)
        sys.stdout.flush()  # here, so a reader that went away is caught below
        return code
    except ParityError as e:
        print(f"convert-model: {one_line(e)}", file=sys.stderr)
        for line in e.failures:
            print(f"  {one_line(line)}", file=sys.stderr)
        return EXIT_GATE
    except ConvertModelError as e:
        print(f"convert-model: error: {e.stage}: {one_line(e)}", file=sys.stderr)
        return EXIT_INPUT
    except Terminated:
        print("convert-model: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("convert-model: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except Exception:  # noqa: BLE001  an unexpected error is a bug: show everything
        lines = traceback.format_exc().splitlines()
        print("\n".join(map(printable, lines)), file=sys.stderr)
        print(
            "convert-model: internal error; please report it with the traceback above",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _closed_pipe() -> int:
    """The reader went away (``| head -3``): not an error; keep Python's exit flush quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
