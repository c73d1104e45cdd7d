"""Parse ``--input-spec``: input names, dtypes, dynamic axes, and the sizes used for checking.

Grammar (inputs are separated by commas outside brackets)::

    SPEC   := INPUT ("," INPUT)*
    INPUT  := NAME ":" DTYPE "[" DIM ("," DIM)* "]" ["=" SHAPE ("/" SHAPE)*] ["@" LOW ".." HIGH]
    DIM    := an integer (a fixed size) | an identifier (a dynamic axis, shared by name)
    SHAPE  := INT ("x" INT)*          one concrete shape per parity check
    LOW..HIGH                          values drawn from [LOW, HIGH); ints for integer dtypes

Example: ``input_ids:int64[batch,seq]=1x128/4x32@0..30522,attention_mask:int64[batch,seq]@1..2``.

An input without ``=`` takes its sizes from other inputs sharing its axis names, or the
defaults (batch-like first axis 1 then 2; other dynamic axes 16 then 8). With a single
shape, a second one is derived by changing every dynamic axis, so parity always runs at
two shapes when the model has dynamic axes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from convert_model.core.errors import UsageError
from convert_model.core.limits import MAX_DIMS, check_elements
from converters.types import TensorSpec

DTYPES: Mapping[str, str] = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "float64": "float64",
    "double": "float64",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}

_INPUT_RE = re.compile(
    r"""^(?P<name>[A-Za-z_][\w.\-]*)
        :(?P<dtype>[A-Za-z0-9]+)
        \[(?P<dims>[^\]]*)\]
        (?:=(?P<shapes>[0-9x/]+))?
        (?:@(?P<low>-?[0-9.eE+-]+?)\.\.(?P<high>-?[0-9.eE+-]+))?$""",
    re.VERBOSE,
)
_AXIS_RE = re.compile(r"^[A-Za-z_]\w*$")
_DEFAULT_SIZES = ((1, 16), (2, 8))  # (first axis, other axes) for check shapes 1 and 2


@dataclass(frozen=True, kw_only=True)
class TensorInput:
    """One input: its spec, concrete shapes (one per check), and the value range."""

    spec: TensorSpec
    shapes: tuple[tuple[int, ...], ...]
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """A parsed ``--input-spec``."""

    inputs: tuple[TensorInput, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Input names in the order given (the module's positional order)."""
        return tuple(i.spec.name for i in self.inputs)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Per input, axis index to dynamic axis name."""
        return {
            i.spec.name: {a: d for a, d in enumerate(i.spec.dims) if isinstance(d, str)}
            for i in self.inputs
        }

    def examples(self, seed: int = 0) -> tuple[dict[str, np.ndarray], ...]:
        """Draw one deterministic input set per check shape."""
        rng = np.random.default_rng(seed)
        count = len(self.inputs[0].shapes)
        return tuple(
            {i.spec.name: _draw(rng, i, i.shapes[k]) for i in self.inputs} for k in range(count)
        )


def _draw(rng: np.random.Generator, tensor: TensorInput, shape: tuple[int, ...]) -> np.ndarray:
    dtype = np.dtype(tensor.spec.dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        low = int(tensor.low) if tensor.low is not None else 0
        high = int(tensor.high) if tensor.high is not None else 2
        return rng.integers(low, high, size=shape, dtype=dtype)
    if tensor.low is not None and tensor.high is not None:
        return rng.uniform(tensor.low, tensor.high, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``text``; raise UsageError naming the faulty part and the expected form."""
    if not text or not text.strip():
        raise UsageError(
            "--input-spec is empty; expected e.g. 'x:float32[batch,3,224,224]=1x3x224x224'"
        )
    raw = []
    for part in split_top_level(text.strip()):
        raw.append(_parse_one(part))
    names = [r[0].name for r in raw]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"--input-spec names {', '.join(duplicates)} more than once")
    return InputSpec(inputs=_resolve_shapes(raw))


_Raw = tuple[TensorSpec, tuple[tuple[int, ...], ...], float | None, float | None]


def _parse_one(part: str) -> _Raw:
    expected = "NAME:DTYPE[DIM,...][=AxB/CxD][@LOW..HIGH]"
    match = _INPUT_RE.match(part)
    if not match:
        raise UsageError(f"--input-spec entry {part!r} is malformed; expected {expected}")
    name, dtype_text = match["name"], match["dtype"].lower()
    if dtype_text not in DTYPES:
        raise UsageError(
            f"--input-spec entry {name!r}: unknown dtype {dtype_text!r}; "
            f"allowed: {', '.join(sorted(set(DTYPES)))}"
        )
    dims: list[int | str] = []
    if match["dims"].count(",") >= MAX_DIMS:
        raise UsageError(
            f"--input-spec entry {name!r}: {match['dims'].count(',') + 1} dims; at most "
            f"{MAX_DIMS} are supported"
        )
    for dim in (d.strip() for d in match["dims"].split(",")):
        if dim.isdigit() and int(dim) > 0:
            dims.append(int(dim))
        elif _AXIS_RE.match(dim):
            dims.append(dim)
        else:
            raise UsageError(
                f"--input-spec entry {name!r}: dim {dim!r} is neither a positive size "
                "nor an axis name"
            )
    shapes: list[tuple[int, ...]] = []
    if match["shapes"]:
        for shape_text in match["shapes"].split("/"):
            sizes = shape_text.split("x")
            if not all(s.isdigit() and int(s) > 0 for s in sizes):
                raise UsageError(
                    f"--input-spec entry {name!r}: shape {shape_text!r} must be positive "
                    "sizes joined by 'x'"
                )
            shape = tuple(int(s) for s in sizes)
            if len(shape) != len(dims):
                raise UsageError(
                    f"--input-spec entry {name!r}: shape {shape_text} has {len(shape)} sizes "
                    f"but the input has {len(dims)} dims"
                )
            for dim, size in zip(dims, shape, strict=True):
                if isinstance(dim, int) and dim != size:
                    raise UsageError(
                        f"--input-spec entry {name!r}: shape {shape_text} sets a fixed dim "
                        f"of {dim} to {size}"
                    )
            shapes.append(shape)
    low = high = None
    if match["low"] is not None:
        try:
            low, high = float(match["low"]), float(match["high"])
        except ValueError:
            raise UsageError(
                f"--input-spec entry {name!r}: range must be LOW..HIGH numbers"
            ) from None
        if not low < high:
            raise UsageError(f"--input-spec entry {name!r}: range {low}..{high} is empty")
        _check_range(name, DTYPES[dtype_text], low, high)
    return (
        TensorSpec(name=name, dtype=DTYPES[dtype_text], dims=tuple(dims)),
        tuple(shapes),
        low,
        high,
    )


def _check_range(name: str, dtype_name: str, low: float, high: float) -> None:
    """The range must be finite and its values representable in the dtype."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UsageError(f"--input-spec entry {name!r}: range {low}..{high} is not finite")
    dtype = np.dtype(dtype_name)
    if dtype == np.bool_:
        lowest, highest = 0.0, 2.0
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        lowest, highest = float(info.min), float(info.max) + 1  # HIGH is exclusive
    else:
        finfo = np.finfo(dtype)
        lowest, highest = float(finfo.min), float(finfo.max)
    if low < lowest or high > highest:
        raise UsageError(
            f"--input-spec entry {name!r}: range {low:g}..{high:g} exceeds {dtype_name}'s "
            f"{lowest:g}..{highest:g}"
        )


def _resolve_shapes(raw: list[_Raw], what: str = "--input-spec") -> tuple[TensorInput, ...]:
    """Give every input the same number of shapes, with axis sizes agreeing by name."""
    counts = {len(shapes) for _, shapes, _, _ in raw if shapes}
    if len(counts) > 1:
        raise UsageError(f"--input-spec inputs give different numbers of shapes: {sorted(counts)}")
    count = counts.pop() if counts else 1
    axis_sizes: list[dict[str, int]] = [{} for _ in range(count)]
    for spec, shapes, _, _ in raw:
        for k, shape in enumerate(shapes):
            for dim, size in zip(spec.dims, shape, strict=True):
                if isinstance(dim, str):
                    seen = axis_sizes[k].setdefault(dim, size)
                    if seen != size:
                        raise UsageError(
                            f"--input-spec axis {dim!r} is {seen} in one input and {size} in "
                            f"{spec.name!r} for check shape {k + 1}"
                        )
    for spec, _, _, _ in raw:
        for axis, dim in enumerate(spec.dims):
            if isinstance(dim, str):
                for k in range(count):
                    axis_sizes[k].setdefault(dim, _DEFAULT_SIZES[0][0 if axis == 0 else 1])
    if count == 1 and axis_sizes[0]:
        axis_sizes.append({axis: _other_size(size) for axis, size in axis_sizes[0].items()})
    resolved = []
    for spec, _, low, high in raw:
        shapes = tuple(
            tuple(sizes[d] if isinstance(d, str) else d for d in spec.dims) for sizes in axis_sizes
        )
        resolved.append(TensorInput(spec=spec, shapes=shapes, low=low, high=high))
    for k in range(len(axis_sizes) or 1):
        check_elements((r.shapes[k] for r in resolved), what)
    return tuple(resolved)


def _other_size(size: int) -> int:
    """A second size for a dynamic axis, so the second check exercises the axis."""
    return 2 if size == 1 else max(1, size // 2)


def from_tensor_specs(specs: tuple[TensorSpec, ...], what: str = "the graph's inputs"
                      ) -> InputSpec:
    """An InputSpec for inputs whose dtypes and dims are known (an ONNX graph's), default sizes.

    ``what`` names the inputs' source in the message when their fixed dims are too large.
    """
    return InputSpec(inputs=_resolve_shapes([(spec, (), None, None) for spec in specs], what))
