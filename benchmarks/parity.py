"""Output parity: per-output closeness of a candidate's outputs to the original's.

Measuring only: ``compare`` returns one record per output and check shape; ``failures``
applies a budget the caller chose. Nothing here decides what ships.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from convert_model.core.errors import ParityError

_REL_FLOOR = 1e-8  # keeps the relative difference finite where the reference is 0


@dataclass(frozen=True, kw_only=True)
class OutputParity:
    """How close one output is, at one check shape.

    Attributes:
        name: output name.
        check: index of the input set (check shape) it was measured on.
        shape: the reference output's shape.
        dtype: the reference output's dtype.
        shape_match: whether the candidate's shape equals the reference's.
        max_abs_diff: max |candidate - reference|.
        max_rel_diff: max |candidate - reference| / (|reference| + 1e-8).
        min_cosine: cosine similarity per row (first axis), the minimum; None for non-floats.
        top1_agreement: share of rows whose argmax over the last axis agrees; logits only.
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

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputParity:
        """Rebuild from the manifest form."""
        return cls(**{**data, "shape": tuple(data["shape"])})


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


def _cosine_min(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Min cosine over rows (first axis).

    With one value per row (a regression score) a row's cosine is only its sign, so the
    whole column is compared as one vector instead.
    """
    rows = reference.shape[0] if reference.ndim > 1 else 1
    if reference.ndim > 1 and reference.size == rows:
        rows = 1
    a = reference.reshape(rows, -1).astype(np.float64)
    b = candidate.reshape(rows, -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.einsum("ij,ij->i", a, b)
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(both_zero, 1.0, dot / (na * nb))
    cos = np.nan_to_num(cos, nan=-1.0)
    return float(cos.min())


def compare_output(
    name: str, check: int, reference: np.ndarray, candidate: np.ndarray
) -> OutputParity:
    """Measure one output."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        return OutputParity(
            name=name,
            check=check,
            shape=reference.shape,
            dtype=str(reference.dtype),
            shape_match=False,
            max_abs_diff=float("inf"),
            max_rel_diff=float("inf"),
            min_cosine=None,
            top1_agreement=None,
        )
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    same_nan = np.isnan(ref) == np.isnan(cand)
    diff = np.where(np.isnan(ref) & np.isnan(cand), 0.0, np.abs(cand - ref))
    diff = np.where(same_nan, np.nan_to_num(diff, nan=np.inf, posinf=np.inf), np.inf)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff / (np.abs(np.nan_to_num(ref)) + _REL_FLOOR)).max()) if diff.size else 0.0
    is_float = np.issubdtype(reference.dtype, np.floating)
    cosine = _cosine_min(np.nan_to_num(ref), np.nan_to_num(cand)) if is_float and ref.size else None
    top1 = None
    if is_float and _is_logits(name, reference):
        top1 = float(np.mean(reference.argmax(-1) == candidate.argmax(-1)))
    return OutputParity(
        name=name,
        check=check,
        shape=reference.shape,
        dtype=str(reference.dtype),
        shape_match=True,
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        min_cosine=cosine,
        top1_agreement=top1,
    )


def compare(
    reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], check: int = 0
) -> list[OutputParity]:
    """Compare every output by name; a different set of outputs is an error, not a truncation."""
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
    return [
        compare_output(name, check, ref, cand)
        for (name, ref), cand in zip(reference.items(), candidate.values(), strict=True)
    ]


# Defaults per precision. "1 point" of a task metric in [0, 1] is 0.01.
DEFAULT_BUDGETS: Mapping[str, ParityBudget] = {
    "fp32": ParityBudget(),
    "int8": ParityBudget(
        max_abs_diff=None, min_cosine=0.99, min_top1_agreement=0.99, max_metric_drop=0.01,
        min_greedy_identical=0.9, min_beam_identical=None,
    ),
    "fp16": ParityBudget(
        max_abs_diff=None, min_cosine=0.999, min_top1_agreement=0.99, max_metric_drop=0.01,
        min_greedy_identical=0.9, min_beam_identical=None,
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
            and r.top1_agreement is not None
            and not r.top1_agreement >= budget.min_top1_agreement
        ):
            lines.append(
                f"{where}: top-1 agreement {r.top1_agreement:.4f} < {budget.min_top1_agreement:g}"
            )
    return lines
