"""Latency over batch sizes and sequence lengths: every runner interleaved at every point.

Inputs for a point are made from one example input by tiling (or truncating) it along its
dynamic axes: a dynamic axis 0 is the batch axis; the first other dynamic axis that is not an
image axis (height, width, channels) is the sequence axis (``sequence_length``, ``seq``,
``items``). Image axes keep the example's size, so an image model is swept over batch sizes
only.

Measuring only: a point a runner cannot run (a sequence longer than the model takes) is
recorded with its error, and the sweep goes on.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.footprint import Footprint
from benchmarks.latency import LatencyConfig, LatencyStats, measure_interleaved
from convert_model.core.errors import summary
from convert_model.core.limits import check_elements

Inputs = Mapping[str, np.ndarray]
Axes = Mapping[str, Mapping[int, str]]  # per input: axis index -> axis name (dynamic axes)
ORIGINAL = "original"
_IMAGE_WORDS = ("height", "width", "channel")


MAX_POINTS = 16  # per axis
MAX_POINT_SIZE = 65_536  # a batch size or sequence length


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """Which points to measure and how long; ``footprint`` adds cold start and peak memory.

    Attributes:
        batch_sizes: batch sizes to measure, for every model.
        seq_lens: sequence lengths, for models with a sequence axis; lengths over the
            model's limit are dropped.
        warmup: untimed calls per runner at each point.
        rounds: timed rounds per point (each runner once per round, interleaved).
        max_seconds: a point stops after this long, once it has 3 rounds.
        footprint: measure each graph's cold start and peak memory in a child process.
    """

    batch_sizes: tuple[int, ...] = (1, 4, 16)
    seq_lens: tuple[int, ...] = (16, 64, 128)
    warmup: int = 1
    rounds: int = 5
    max_seconds: float = 10.0
    footprint: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_sizes", "seq_lens"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values:
                raise ValueError(f"{name} must be a non-empty tuple of ints >= 1, got {values!r}")
            bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 1]
            if bad:
                raise ValueError(f"{name} must hold ints >= 1, got {bad} in {values!r}")
            large = [v for v in values if v > MAX_POINT_SIZE]
            if large or len(values) > MAX_POINTS:
                raise ValueError(
                    f"{name} must hold at most {MAX_POINTS} sizes of at most {MAX_POINT_SIZE:,}, "
                    f"got {len(values)} sizes" + (f", {large[:3]} too large" if large else "")
                )
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")

    def latency(self) -> LatencyConfig:
        """The per-point latency settings."""
        return LatencyConfig(warmup=self.warmup, rounds=self.rounds, max_seconds=self.max_seconds)

    def to_json(self) -> dict[str, Any]:
        """Return the report form."""
        return {
            "batch_sizes": list(self.batch_sizes),
            "seq_lens": list(self.seq_lens),
            "warmup": self.warmup,
            "rounds": self.rounds,
            "max_seconds": self.max_seconds,
            "footprint": self.footprint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepConfig:
        """Rebuild from the report form."""
        return cls(
            batch_sizes=tuple(data["batch_sizes"]),
            seq_lens=tuple(data["seq_lens"]),
            warmup=data["warmup"],
            rounds=data["rounds"],
            max_seconds=data["max_seconds"],
            footprint=data["footprint"],
        )


@dataclass(frozen=True, kw_only=True)
class SweepPoint:
    """One batch size (and sequence length): every runner's latency, or why it could not run."""

    batch_size: int
    seq_len: int | None
    input_shapes: Mapping[str, list[int]]
    latency: Mapping[str, LatencyStats]
    errors: Mapping[str, str] = field(default_factory=dict)

    def speedup(self, name: str) -> float | None:
        """``name``'s speed-up over the original at this point (p50 ratio), when both ran."""
        if name not in self.latency or ORIGINAL not in self.latency:
            return None
        return self.latency[ORIGINAL].p50_ms / self.latency[name].p50_ms

    def to_json(self) -> dict[str, Any]:
        """Return the report form; speed-ups from the rounded times, so a re-read agrees."""
        latency = {k: v.to_json() for k, v in self.latency.items()}
        base = latency.get(ORIGINAL, {}).get("p50_ms")
        return {
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "latency": latency,
            "speedup": {
                k: round(base / v["p50_ms"], 3) for k, v in latency.items() if base and v["p50_ms"]
            },
            "errors": dict(self.errors),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepPoint:
        """Rebuild from the report form."""
        return cls(
            batch_size=data["batch_size"],
            seq_len=data["seq_len"],
            input_shapes=data["input_shapes"],
            latency={k: LatencyStats(**v) for k, v in data["latency"].items()},
            errors=data.get("errors", {}),
        )


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """Every point of a sweep, and each graph's footprint."""

    config: SweepConfig
    batch_axis: str | None
    seq_axis: str | None
    threads: int
    points: tuple[SweepPoint, ...]
    footprints: Mapping[str, Footprint] = field(default_factory=dict)
    footprint_errors: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def runners(self) -> list[str]:
        """Every runner measured at some point, the original first."""
        names: list[str] = []
        for point in self.points:
            names += [n for n in point.latency if n not in names]
        return sorted(names, key=lambda n: n != ORIGINAL)

    def to_json(self) -> dict[str, Any]:
        """Return the report form."""
        return {
            "config": self.config.to_json(),
            "batch_axis": self.batch_axis,
            "seq_axis": self.seq_axis,
            "threads": self.threads,
            "seconds": round(self.seconds, 3),
            "points": [p.to_json() for p in self.points],
            "footprints": {k: v.to_json() for k, v in self.footprints.items()},
            "footprint_errors": dict(self.footprint_errors),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepResult:
        """Rebuild from the report form."""
        return cls(
            config=SweepConfig.from_json(data["config"]),
            batch_axis=data["batch_axis"],
            seq_axis=data["seq_axis"],
            threads=data["threads"],
            seconds=data.get("seconds", 0.0),
            points=tuple(SweepPoint.from_json(p) for p in data["points"]),
            footprints={k: Footprint.from_json(v) for k, v in data["footprints"].items()},
            footprint_errors=data.get("footprint_errors", {}),
        )


def _is_sequence(name: str) -> bool:
    lowered = name.lower()
    return not any(word in lowered for word in _IMAGE_WORDS)


def sweep_axes(axes: Axes) -> tuple[str | None, str | None]:
    """The batch axis name (a dynamic axis 0) and the sequence axis name, when inputs have them."""
    batch = next((dims[0] for dims in axes.values() if 0 in dims), None)
    seq = next(
        (n for dims in axes.values() for i, n in sorted(dims.items()) if i > 0 and _is_sequence(n)),
        None,
    )
    return batch, seq


def plan_points(
    config: SweepConfig, axes: Axes, max_seq_len: int | None = None
) -> list[tuple[int, int | None]]:
    """The (batch size, sequence length) points the sweep measures, in order.

    Without a dynamic batch axis only batch 1 is measured; without a sequence axis the
    sequence length is None. Lengths over ``max_seq_len`` are dropped (the limit itself is
    measured instead when every length is over it).
    """
    batch_axis, seq_axis = sweep_axes(axes)
    batches = sorted(set(config.batch_sizes)) if batch_axis is not None else [1]
    seqs: list[int | None] = [None]
    if seq_axis is not None:
        lens = sorted(set(config.seq_lens))
        if max_seq_len is not None:
            lens = [n for n in lens if n <= max_seq_len] or [max_seq_len]
        seqs = list(lens)
    return [(b, s) for s in seqs for b in batches]


def _fit(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Tile ``array`` along ``axis`` until it is at least ``size`` long, then cut it there."""
    length = array.shape[axis]
    if length == 0:
        raise ValueError(f"cannot tile an empty axis {axis} of shape {array.shape}")
    reps = [1] * array.ndim
    reps[axis] = math.ceil(size / length)
    return np.take(np.tile(array, reps), np.arange(size), axis=axis)


def point_inputs(base: Inputs, axes: Axes, batch_size: int, seq_len: int | None) -> dict[str, Any]:
    """``base`` tiled or truncated to ``batch_size`` rows and ``seq_len`` along sequence axes."""
    _, seq_axis = sweep_axes(axes)
    shapes = []
    for name, value in base.items():
        shape = list(np.shape(value))
        for axis, axis_name in axes.get(name, {}).items():
            if axis == 0 and shape:
                shape[0] = batch_size
            elif seq_len is not None and axis_name == seq_axis and axis < len(shape):
                shape[axis] = seq_len
        shapes.append(shape)
    check_elements(shapes, f"sweep point batch {batch_size}, seq {seq_len}")
    feed: dict[str, np.ndarray] = {}
    for name, value in base.items():
        array = np.asarray(value)
        dims = axes.get(name, {})
        for axis, axis_name in dims.items():
            if axis >= array.ndim:
                continue
            if axis == 0:
                array = _fit(array, 0, batch_size)
            elif seq_len is not None and axis_name == seq_axis:
                array = _fit(array, axis, seq_len)
        feed[name] = np.ascontiguousarray(array)
    return feed


def run_sweep(
    runners: Mapping[str, Callable[[Inputs], object]],
    base: Inputs,
    axes: Axes,
    config: SweepConfig,
    *,
    threads: int,
    max_seq_len: int | None = None,
    on_point: Callable[[str], None] | None = None,
) -> SweepResult:
    """Measure every runner at every planned point, interleaved within each point.

    Args:
        runners: by name, a callable that runs one input set; ``original`` is the reference
            the speed-ups are taken against.
        base: the example input the points are tiled from (batch 1 is best).
        axes: the graph inputs' dynamic axes, as ``{input: {axis index: axis name}}``.
        config: the points and how long to measure each.
        threads: the thread count the runners use (recorded, not set).
        max_seq_len: the longest sequence the model takes, when known.
        on_point: called after each point with a short label (for a progress bar).
    """
    start = time.perf_counter()
    batch_axis, seq_axis = sweep_axes(axes)
    points = []
    for batch_size, seq_len in plan_points(config, axes, max_seq_len):
        feed = point_inputs(base, axes, batch_size, seq_len)
        errors: dict[str, str] = {}
        live: dict[str, Callable[[], object]] = {}
        for name, run in runners.items():
            try:
                run(feed)  # one untimed call also finds the points a runner cannot take
            except Exception as e:  # noqa: BLE001  a point the model cannot run is a finding
                errors[name] = summary(e)[:300]
                continue
            live[name] = functools.partial(run, feed)
        latency = measure_interleaved(live, config.latency(), batch_size=batch_size) if live else {}
        points.append(
            SweepPoint(
                batch_size=batch_size,
                seq_len=seq_len,
                input_shapes={k: list(v.shape) for k, v in feed.items()},
                latency=latency,
                errors=errors,
            )
        )
        if on_point is not None:
            on_point(f"batch {batch_size}" + (f" × seq {seq_len}" if seq_len else ""))
    return SweepResult(
        config=config,
        batch_axis=batch_axis,
        seq_axis=seq_axis,
        threads=threads,
        points=tuple(points),
        seconds=time.perf_counter() - start,
    )


def axes_of(inputs: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, str]]:
    """Dynamic axes from the manifest's ``inputs`` entries (``{"0": "batch_size", ...}``)."""
    return {
        str(i["name"]): {int(k): str(v) for k, v in i.get("dynamic_axes", {}).items()}
        for i in inputs
    }
