"""Output parity: per-output closeness of a candidate's outputs to the original's.

Measuring only: ``compare`` returns one record per output and check shape; ``failures``
applies a budget the caller chose. Nothing here decides what ships.

Rules:
- NaN never equals NaN: a non-finite value on either side makes the difference infinite,
  and the candidate's non-finite values are counted (padded positions included).
- The cosine of a zero vector is undefined: such rows are counted and fail a cosine
  budget; they never count as 1.
- An output whose first two axes match an attention-mask input (``benchmarks.masking``) is
  compared on real positions only, with per-example figures as well.
- Float outputs of shape [batch, C], C >= 2, get top-1 (and, for C > 5, top-5) agreement;
  the top-1 budget gates outputs named like class scores (logits, probabilities).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from benchmarks.masking import mask_for, mask_inputs
from convert_model.core.errors import CheckpointError, ParityError

_REL_FLOOR = 1e-8  # keeps the relative difference finite where the reference is 0
TOP_K = 5


@dataclass(frozen=True, kw_only=True)
class OutputParity:
    """How close one output is, at one check shape.

    Attributes:
        name: output name.
        check: index of the input set (check shape) it was measured on.
        shape: the reference output's shape.
        dtype: the reference output's dtype.
        shape_match: whether the candidate's shape equals the reference's.
        max_abs_diff: max |candidate - reference| (real positions of a masked output).
        max_rel_diff: max |candidate - reference| / (|reference| + 1e-8).
        min_cosine: cosine similarity per row, the minimum over rows where it is defined;
            None for non-floats or when no row has one.
        top1_agreement: share of rows whose argmax over the last axis agrees.
        top5_agreement: share of rows whose reference argmax is in the candidate's top 5.
        class_scores: whether the output is named like class scores (top-1 is gated).
        masked_by: the attention-mask input that chose the real positions, if any.
        real_rows: how many rows (real tokens of a masked output) were compared.
        nonfinite: NaN or Inf values in the candidate, at every position.
        cosine_undefined: rows where either side is a zero vector.
        per_example: for a masked output, each example's max abs diff and min cosine.
    """

    name: str
    check: int
    shape: tuple[int, ...]
    dtype: str
    shape_match: bool
    max_abs_diff: float
    max_rel_diff: float
    min_cosine: float | None
    top1_agreement: float | None
    top5_agreement: float | None = None
    class_scores: bool = False
    masked_by: str | None = None
    real_rows: int | None = None
    nonfinite: int = 0
    cosine_undefined: int = 0
    per_example: tuple[Mapping[str, float | None], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["per_example"] = [dict(e) for e in self.per_example]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputParity:
        """Rebuild from the manifest form."""
        return cls(**{**data, "shape": tuple(data["shape"]),
                      "per_example": tuple(data.get("per_example", ()))})


@dataclass(frozen=True, kw_only=True)
class ParityBudget:
    """Limits a variant must stay within; None switches a limit off.

    The first four bound a forward graph's outputs; the last two bound a generation loop's
    outputs: the share of inputs whose greedy (top-beam) generation is token-identical to
    the original's. A quantized generation variant with labelled data is held to the task
    metric instead of greedy identity.
    """

    max_abs_diff: float | None = 1e-4
    min_cosine: float | None = 0.9999
    min_top1_agreement: float | None = 1.0
    max_metric_drop: float | None = 0.001
    min_greedy_identical: float | None = 1.0
    min_beam_identical: float | None = 0.98

    def __post_init__(self) -> None:
        for field_name in ("max_abs_diff", "max_metric_drop"):
            value = getattr(self, field_name)
            if value is not None and not value >= 0:
                raise ValueError(f"{field_name} must be >= 0, got {value}")
        for field_name in ("min_cosine", "min_top1_agreement"):
            value = getattr(self, field_name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValueError(f"{field_name} must be in [-1, 1], got {value}")
        for field_name in ("min_greedy_identical", "min_beam_identical"):
            value = getattr(self, field_name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{field_name} must be in [0, 1], got {value}")

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return asdict(self)


def _is_logits(name: str, reference: np.ndarray) -> bool:
    """Class scores: outputs named like logits or probabilities, with more than one class."""
    lowered = name.lower()
    scores = "logits" in lowered or "prob" in lowered
    return scores and reference.ndim >= 1 and reference.shape[-1] > 1


def _is_classifier(reference: np.ndarray) -> bool:
    """An output of shape [batch, C] with C >= 2, whatever it is called."""
    return reference.ndim == 2 and reference.shape[1] >= 2


def _row_cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Cosine per row (first axis); NaN where either row is a zero vector.

    With one value per row (a regression score) a row's cosine is only its sign, so the
    whole column is compared as one vector instead.
    """
    rows = reference.shape[0] if reference.ndim > 1 else 1
    if reference.ndim > 1 and reference.size == rows:
        rows = 1
    a = reference.reshape(rows, -1)
    b = candidate.reshape(rows, -1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.einsum("ij,ij->i", a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((na > 0) & (nb > 0), dot / (na * nb), np.nan)


def _figures(ref: np.ndarray, cand: np.ndarray) -> tuple[float, float, float | None, int]:
    """Max abs diff, max rel diff, min defined cosine and undefined-cosine rows of two arrays."""
    if not ref.size:
        return 0.0, 0.0, None, 0
    finite = np.isfinite(ref) & np.isfinite(cand)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(cand - ref), np.inf)
    max_abs = float(diff.max())
    max_rel = float((diff / (np.abs(np.where(finite, ref, 0.0)) + _REL_FLOOR)).max())
    if not np.all(finite):
        return max_abs, max_rel, None, 0
    cos = _row_cosines(ref, cand)
    defined = ~np.isnan(cos)
    min_cos = float(cos[defined].min()) if defined.any() else None
    return max_abs, max_rel, min_cos, int((~defined).sum())


def _agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float | None]:
    """Top-1 agreement and, with more than five classes, top-5 agreement over rows."""
    ref = reference.reshape(-1, reference.shape[-1])
    cand = candidate.reshape(-1, candidate.shape[-1])
    truth = ref.argmax(-1)
    top1 = float(np.mean(truth == cand.argmax(-1)))
    if ref.shape[-1] <= TOP_K:
        return top1, None
    top5 = np.argpartition(-cand, TOP_K - 1, axis=-1)[:, :TOP_K]
    return top1, float(np.mean(np.any(top5 == truth[:, None], axis=1)))


def compare_output(
    name: str,
    check: int,
    reference: np.ndarray,
    candidate: np.ndarray,
    mask: tuple[str, np.ndarray] | None = None,
) -> OutputParity:
    """Measure one output; ``mask`` (input name, [batch, seq] booleans) picks the real rows."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    base = functools.partial(OutputParity, name=name, check=check, shape=reference.shape,
                             dtype=str(reference.dtype))
    if reference.shape != candidate.shape:
        return base(shape_match=False, max_abs_diff=float("inf"),
                            max_rel_diff=float("inf"), min_cosine=None, top1_agreement=None)
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    nonfinite = int((~np.isfinite(cand)).sum())
    is_float = np.issubdtype(reference.dtype, np.floating)
    per_example: list[dict[str, float | None]] = []
    if mask is not None:
        real = mask[1]
        for row in range(real.shape[0]):
            abs_b, _, cos_b, _ = _figures(ref[row][real[row]], cand[row][real[row]])
            per_example.append({"max_abs_diff": abs_b,
                                "min_cosine": cos_b if is_float else None})
        ref, cand = ref[real], cand[real]
    max_abs, max_rel, cosine, undefined = _figures(ref, cand)
    top1 = top5 = None
    scores = _is_logits(name, reference)
    if is_float and mask is not None and reference.ndim == 2 and scores:
        # Scores over positions (a span start): each example's argmax over its real tokens.
        rows = [(r[m], c[m]) for r, c, m in zip(reference, candidate, mask[1], strict=True)
                if m.any()]
        top1 = float(np.mean([r.argmax() == c.argmax() for r, c in rows])) if rows else None
    elif is_float and (scores or _is_classifier(reference)) and ref.size and ref.ndim >= 1:
        top1, top5 = _agreement(ref, cand)
    return base(
        shape_match=True,
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        min_cosine=cosine if is_float else None,
        top1_agreement=top1,
        top5_agreement=top5,
        class_scores=scores,
        masked_by=mask[0] if mask is not None else None,
        real_rows=int(len(ref)) if mask is not None else None,
        nonfinite=nonfinite,
        cosine_undefined=undefined if is_float else 0,
        per_example=tuple(per_example),
    )


def compare(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    check: int = 0,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> list[OutputParity]:
    """Compare every output by name; a different set of outputs is an error, not a truncation.

    ``inputs`` are the inputs both sides ran on: an attention mask among them restricts
    token-level outputs to real positions.
    """
    if list(reference) != list(candidate):
        missing = [n for n in reference if n not in candidate]
        extra = [n for n in candidate if n not in reference]
        raise ParityError(
            f"outputs differ: reference has {list(reference)}, candidate has {list(candidate)}",
            tuple(
                [f"missing output {n}" for n in missing] + [f"extra output {n}" for n in extra]
                or ["outputs in a different order"]
            ),
        )
    masks = mask_inputs(inputs)
    return [
        compare_output(name, check, ref, cand, mask_for(np.asarray(ref), masks))
        for (name, ref), cand in zip(reference.items(), candidate.values(), strict=True)
    ]


def nonfinite_outputs(outputs: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Output name → how many NaN/Inf values it holds, for the outputs that hold any."""
    found = {}
    for name, value in outputs.items():
        array = np.asarray(value)
        if np.issubdtype(array.dtype, np.inexact):
            count = int((~np.isfinite(array)).sum())
            if count:
                found[name] = count
    return found


def require_finite_original(sets: Iterable[Mapping[str, np.ndarray]], where: str) -> None:
    """Raise CheckpointError naming the first output of the original that holds NaN/Inf.

    A model whose own outputs are not numbers cannot be a reference for anything (a NaN
    ``layer_norm_eps`` in config.json, a NaN weight): the conversion stops here.
    """
    for index, outputs in enumerate(sets):
        bad = nonfinite_outputs(outputs)
        if bad:
            name, count = next(iter(bad.items()))
            size = int(np.asarray(outputs[name]).size)
            raise CheckpointError(
                f"{where}: the original model's output {name!r} holds NaN/Inf ({count} of "
                f"{size} values, check {index}); look for a NaN/Inf weight or config value "
                f"(e.g. layer_norm_eps)"
            )


# Defaults per precision. "1 point" of a task metric in [0, 1] is 0.01.
DEFAULT_BUDGETS: Mapping[str, ParityBudget] = {
    "fp32": ParityBudget(),
    "int8": ParityBudget(
        max_abs_diff=None, min_cosine=0.99, min_top1_agreement=0.99, max_metric_drop=0.01,
        min_greedy_identical=0.9, min_beam_identical=0.75,
    ),
    "fp16": ParityBudget(
        max_abs_diff=None, min_cosine=0.999, min_top1_agreement=0.99, max_metric_drop=0.01,
        min_greedy_identical=0.9, min_beam_identical=0.75,
    ),
}


BUDGET_FIELDS = ("max_abs_diff", "min_cosine", "min_top1_agreement", "max_metric_drop",
                 "min_greedy_identical", "min_beam_identical")


def override_budgets(base: Mapping[str, ParityBudget], text: str) -> dict[str, ParityBudget]:
    """Apply ``PRECISION.FIELD=VALUE`` overrides (comma-separated; ``none`` switches one off)."""
    budgets = dict(base)
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        precision, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"{item!r} is not PRECISION.FIELD=VALUE")
        if precision not in budgets:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(budgets)}")
        if name not in BUDGET_FIELDS:
            raise ValueError(f"unknown field {name!r}; known: {', '.join(BUDGET_FIELDS)}")
        try:
            number = None if value.strip().lower() == "none" else float(value)
        except ValueError:
            raise ValueError(f"{item!r}: {value!r} is not a number or 'none'") from None
        budgets[precision] = replace(budgets[precision], **{name: number})
    return budgets


def metric_failure(
    metric: str, original: float, candidate: float, budget: ParityBudget
) -> str | None:
    """A line when the task metric dropped by more than the budget allows, else None."""
    if budget.max_metric_drop is None or original - candidate <= budget.max_metric_drop + 1e-12:
        return None
    return (
        f"task metric {metric} {candidate:.4f} vs original {original:.4f}: "
        f"drop {original - candidate:.4f} > {budget.max_metric_drop:g}"
    )


def failures(records: Iterable[OutputParity], budget: ParityBudget) -> list[str]:
    """Every budget breach, one line each, naming output, check shape, figure and limit."""
    lines = []
    for r in records:
        check = "eval set" if r.check < 0 else f"check {r.check}"
        where = f"{r.name} ({check}, shape {list(r.shape)})"
        if not r.shape_match:
            lines.append(f"{where}: candidate shape differs")
            continue
        if r.nonfinite:
            lines.append(f"{where}: {r.nonfinite} NaN/Inf value(s) in the candidate")
        elif not math.isfinite(r.max_abs_diff):
            lines.append(f"{where}: NaN/Inf in the reference; nothing compares equal to it")
        if budget.min_cosine is not None and r.cosine_undefined:
            lines.append(f"{where}: cosine undefined on {r.cosine_undefined} row(s) "
                         "(a zero vector)")
        if budget.max_abs_diff is not None and not r.max_abs_diff <= budget.max_abs_diff:
            lines.append(f"{where}: max abs diff {r.max_abs_diff:.3g} > {budget.max_abs_diff:g}")
        if (
            budget.min_cosine is not None
            and r.min_cosine is not None
            and not r.min_cosine >= budget.min_cosine
        ):
            lines.append(f"{where}: min cosine {r.min_cosine:.6f} < {budget.min_cosine:g}")
        if (
            budget.min_top1_agreement is not None
            and r.class_scores
            and r.top1_agreement is not None
            and not r.top1_agreement >= budget.min_top1_agreement
        ):
            lines.append(
                f"{where}: top-1 agreement {r.top1_agreement:.4f} < {budget.min_top1_agreement:g}"
            )
    return lines


def describe(r: OutputParity) -> str:
    """One record as one line: max abs diff, min cosine, top-1, masked rows, NaN/Inf."""
    parts = [f"{r.name}: max abs diff {r.max_abs_diff:.3g}"]
    if r.min_cosine is not None:
        parts.append(f"min cosine {r.min_cosine:.6f}")
    if r.top1_agreement is not None:
        parts.append(f"top-1 agreement {r.top1_agreement:.1%}")
    if r.masked_by:
        parts.append(f"{r.real_rows} real positions ({r.masked_by})")
    if r.nonfinite:
        parts.append(f"{r.nonfinite} NaN/Inf")
    return ", ".join(parts)
