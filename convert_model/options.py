"""Every option of a conversion: one typed object, and one table of names for every entry point.

``ConvertOptions`` nests the configs each stage reads (load, export, eval, latency, sweep,
generation). ``OPTIONS`` is the one list of option names: the command line's flags
(``--eval-data``), the Python API's keywords (``eval_data=``) and FLEET.yaml's keys are the
same names, parsed by the same functions, with the same defaults (the configs' own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.generation import GenerationTimingConfig
from benchmarks.latency import LatencyConfig
from benchmarks.metrics import METRICS
from benchmarks.parity import BUDGET_FIELDS, DEFAULT_BUDGETS, ParityBudget, override_budgets
from benchmarks.sweep import SweepConfig
from convert_model.core.errors import ConvertModelError, UsageError
from convert_model.core.names import DEVICES, PRECISIONS, TARGETS, VARIANT_PRECISIONS
from converters.export_strategy import STRATEGY_NAMES, ExportConfig
from converters.registry import LoadOptions
from optimizers.presets import PRESETS

SweepSetting = SweepConfig | Literal["auto", "off"]
"""``auto``: the default points for this kind of model (trees: batch 1 and 1,000)."""


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """Labelled data the task metric is measured on, and calibration inputs."""

    data: Path | None = None
    metric: str | None = None
    output: str | None = None  # the model output the metric reads; default the first
    is_default: bool = False  # the eval set came with a reference model, not from the user
    sample_data: Path | None = None
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.data is not None and not self.metric:
            raise UsageError("--eval-data needs --metric (accuracy, spearman, micro_f1, ...)")
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True, kw_only=True)
class GenerationOptions:
    """Generative models: whether to export for a generation loop and judge it, and timing."""

    enabled: bool = True
    timing: GenerationTimingConfig = field(default_factory=GenerationTimingConfig)


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """Everything ``convert`` takes besides the checkpoint; validated on construction."""

    target: str = "onnx"
    out: Path | None = None
    precision: str = "auto"
    preset: str | None = None
    device: str = "cpu"
    force: bool = False
    threads: int | None = None
    sign: Path | None = None  # key file: HMAC-SHA256 of manifest.json into manifest.sig
    int8_budget_s: float = 60.0  # wall-time budget of the optimise stage, int8 search included
    load: LoadOptions = field(default_factory=LoadOptions)
    export: ExportConfig = field(default_factory=ExportConfig)
    eval: EvalOptions = field(default_factory=EvalOptions)
    budgets: Mapping[str, ParityBudget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    sweep: SweepSetting = "auto"
    generation: GenerationOptions = field(default_factory=GenerationOptions)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("target", self.target, TARGETS),
            ("precision", self.precision, PRECISIONS),
            ("device", self.device, DEVICES),
        ):
            if value not in allowed:
                raise UsageError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.preset is not None and self.preset not in PRESETS:
            raise UsageError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        missing = sorted(set(VARIANT_PRECISIONS) - set(self.budgets))
        if missing:
            raise UsageError(f"budgets must cover every precision; missing {missing}")
        from convert_model.bundle.integrity import read_key
        from convert_model.core.limits import check_seconds, check_threads
        from convert_model.core.threads import usable_threads

        check_threads(self.threads, usable_threads())
        check_seconds(self.int8_budget_s, "--int8-budget")
        if self.sign is not None:
            read_key(self.sign)
        if not isinstance(self.sweep, SweepConfig) and self.sweep not in ("auto", "off"):
            raise UsageError(f"sweep must be 'auto', 'off' or a SweepConfig, got {self.sweep!r}")


@dataclass(frozen=True, kw_only=True)
class Option:
    """One option: its name (API keyword; the flag is ``--name`` with dashes) and its field.

    Attributes:
        name: the keyword; ``--`` + name with ``_`` as ``-`` is the command-line flag.
        field: where the parsed value lands: ``precision``, ``load.task``, ``eval.data``.
        help: the command line's help text.
        parse: turns what a user typed (or passed from Python) into the field's value.
        metavar: the command line's placeholder.
        choices: the allowed values, when they are a fixed set.
        flag: a switch that takes no value (``--force``).
        repeat: the flag may repeat; the API takes a list.
        cli: whether the command line offers it (some take Python objects only).
        aliases: older flag spellings the command line still takes.
    """

    name: str
    field: str
    help: str
    parse: Callable[[Any], Any] = lambda value: value
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    flag: bool = False
    repeat: bool = False
    cli: bool = True
    aliases: tuple[str, ...] = ()

    @property
    def flags(self) -> tuple[str, ...]:
        """The command-line spellings, the canonical one first."""
        return ("--" + self.name.replace("_", "-"), *self.aliases)


def _path(value: Any) -> Path | None:
    return None if value is None else Path(value)


def _json_object(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"not valid JSON ({e})") from e
    if not isinstance(parsed, Mapping):
        raise ValueError(f"must be a JSON object, got {value!r}")
    return parsed


def _budgets(value: Any) -> Mapping[str, ParityBudget]:
    if isinstance(value, Mapping):
        return {**DEFAULT_BUDGETS, **value}
    return override_budgets(DEFAULT_BUDGETS, str(value or ""))


def _sweep(value: Any) -> SweepSetting:
    """``auto``, ``off``, or batch sizes and sequence lengths as ``1,4,16:16,64,128``."""
    if isinstance(value, SweepConfig):
        return value
    text = "off" if value is None else str(value).strip().lower()
    if text in ("auto", "off"):
        return text  # type: ignore[return-value]
    batches, _, seqs = text.partition(":")
    try:
        batch_sizes = tuple(int(b) for b in batches.split(",") if b.strip())
        seq_lens = tuple(int(s) for s in seqs.split(",") if s.strip())
        return SweepConfig(batch_sizes=batch_sizes, seq_lens=seq_lens or SweepConfig.seq_lens)
    except ValueError as e:
        raise ValueError(f"must be 'auto', 'off' or like '1,4,16:16,64,128', got {value!r} "
                         f"({e})") from e


def _strategies(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _not(value: Any) -> bool:
    return not value


OPTIONS: tuple[Option, ...] = (
    Option(name="target", field="target", choices=TARGETS, help="output format (default: onnx)"),
    Option(name="out", field="out", parse=_path, metavar="DIR",
           help="bundle folder to write (default: ./NAME-onnx)"),
    Option(name="precision", field="precision", choices=PRECISIONS,
           help="auto: build fp32, fused, int8 and fp16 variants and recommend the fastest within "
           "the accuracy budget; or restrict to one precision (default: auto)"),
    Option(name="preset", field="preset", choices=tuple(PRESETS),
           help="build exactly this recipe instead of the --precision set"),
    Option(name="device", field="device", choices=DEVICES, help="device to serve on"),
    Option(name="eval_data", field="eval.data", parse=_path, metavar="FILE",
           help="labelled data: .npz (one array per model input plus 'labels'), .jsonl (one "
           "object per example: each input's value and 'label'), or .csv (one-input models: a "
           "column per feature and 'label'; empty cells are missing)"),
    Option(name="metric", field="eval.metric", choices=tuple(METRICS),
           help="task metric for --eval-data"),
    Option(name="metric_output", field="eval.output",
           help="model output the metric reads (default: the first)"),
    Option(name="sample_data", field="eval.sample_data", parse=_path, metavar="FILE.npz",
           help="calibration inputs for static int8 (default: the eval set or the check inputs)"),
    Option(name="accuracy_budget", field="budgets", parse=_budgets, metavar="PREC.FIELD=VALUE,...",
           help="override budgets, e.g. 'int8.min_cosine=0.995,fp32.max_abs_diff=1e-3'; fields: "
           + ", ".join(BUDGET_FIELDS)),
    Option(name="int8_budget", field="int8_budget_s", parse=float, metavar="SECONDS",
           help="wall-time budget of the optimise stage, int8 search included (default: 60)"),
    Option(name="threads", field="threads", parse=int,
           help="threads for onnxruntime and PyTorch (default: the cores this process may use)"),
    Option(name="task", field="load.task",
           help="task for Hugging Face models (default: inferred from config.json)"),
    Option(name="input_spec", field="load.input_spec", metavar="SPEC",
           help="inputs of a plain module: NAME:DTYPE[DIMS]=SHAPE/SHAPE@LOW..HIGH,..."),
    Option(name="model_class", field="load.model_class", metavar="FILE.py:Class|module:Class",
           help="the class a state_dict belongs to"),
    Option(name="model_kwargs", field="load.model_kwargs", parse=_json_object, metavar="JSON",
           help="keyword arguments for --model-class, as a JSON object"),
    Option(name="trust_remote_code", field="load.trust_remote_code", flag=True,
           help="allow a Hugging Face model's own code to run"),
    Option(name="trust_pickle", field="load.trust_pickle", flag=True,
           help="allow unpickling, which can run code hidden in the file"),
    Option(name="notebook_object", field="load.notebook_object", metavar="NAME",
           aliases=("--object",), help="notebook: the variable holding the model"),
    Option(name="notebook_inputs", field="load.notebook_inputs", metavar="NAME",
           aliases=("--inputs",),
           help="notebook: the variable holding example inputs (default: example_inputs, "
           "sample_inputs, sample_input)"),
    Option(name="notebook_timeout", field="load.notebook_timeout", parse=float,
           metavar="SECONDS", help="notebook: time limit for running its cells (default: 300)"),
    Option(name="force", field="force", flag=True, help="replace an existing --out folder"),
    Option(name="opset", field="export.opset", parse=int, help="ONNX opset (default: 18)"),
    Option(name="export_strategy", field="export.strategies", parse=_strategies,
           choices=STRATEGY_NAMES, repeat=True,
           help="restrict the export chain (repeatable; default: all, in order)"),
    Option(name="keep_padding", field="export.trim_padding", parse=_not, flag=True,
           help="keep the graph's trailing padding (default: a padded batch is cut to its "
           "longest real row inside the graph, where the outputs are measured not to depend "
           "on the cut positions)"),
    Option(name="sweep", field="sweep", parse=_sweep, metavar="BATCHES[:SEQS]",
           help="latency sweep points, e.g. '1,4,16:16,64,128', 'auto' (default: that; for "
           "tree and scikit-learn models '1,1000'), or 'off'"),
    Option(name="sign", field="sign", parse=_path, metavar="KEY",
           help="sign manifest.json with this key file (HMAC-SHA256, in manifest.sig); check "
           "with 'convert-model verify OUT --key KEY'"),
    Option(name="no_generation", field="generation.enabled", parse=_not, flag=True,
           help="generative models: skip the export with past key/values and the generation "
           "checks (default: run them for text2text-generation and text-generation)"),
    Option(name="latency", field="latency", cli=False, help="a LatencyConfig"),
    Option(name="generation_timing", field="generation.timing", cli=False,
           help="a GenerationTimingConfig"),
    Option(name="external_data_threshold", field="export.external_data_threshold", parse=int,
           cli=False, help="graphs over this many bytes keep their weights in a .data file"),
    Option(name="batch_size", field="eval.batch_size", parse=int, cli=False,
           help="batch size for running the eval set"),
    Option(name="seed", field="load.seed", parse=int, cli=False, help="seed for generated inputs"),
)
BY_NAME: Mapping[str, Option] = {o.name: o for o in OPTIONS}
_SECTIONS: Mapping[str, type] = {
    "load": LoadOptions, "export": ExportConfig, "eval": EvalOptions,
    "generation": GenerationOptions,
}


def options_from(values: Mapping[str, Any]) -> ConvertOptions:
    """Build ConvertOptions from option names (``OPTIONS``) and values; UsageError when bad."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)}; options: "
                         f"{', '.join(BY_NAME)}")
    sections: dict[str, dict[str, Any]] = {name: {} for name in ("", *_SECTIONS)}
    for name, value in values.items():
        option = BY_NAME[name]
        try:
            parsed = option.parse(value)
        except (TypeError, ValueError) as e:
            if isinstance(e, ConvertModelError):
                raise
            raise UsageError(f"{option.flags[0]}: {e}") from e
        if option.choices is not None:
            bad = [v for v in (parsed if option.repeat and parsed else (parsed,))
                   if v is not None and v not in option.choices]
            if bad:
                raise UsageError(f"{option.flags[0]} must be one of {', '.join(option.choices)}, "
                                 f"got {bad[0]!r}")
        section, _, key = option.field.rpartition(".")
        sections[section][key] = parsed
    try:
        nested = {name: cls(**sections[name]) for name, cls in _SECTIONS.items()}
        return ConvertOptions(**sections[""], **nested)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConvertModelError):
            raise
        raise UsageError(str(e)) from e
