"""Large eval sets: parity and the task metric of a bundle over every row, with Ray Data.

When a model's eval set has more rows than the fleet's ``ray_data_rows``, its conversion
judges the first ``ray_data_rows`` rows in process (the bundle's own figures), and the
whole set is then run through the bundle with Ray Data once the conversions are done (so
it never shares CPUs with a timing stage): ``read_csv`` streams a ``.csv`` (an ``.npz`` is
read once and split into blocks), ``map_batches`` runs a callable class that holds one
onnxruntime session per graph per actor, and the driver folds the batches as they stream
in. What is compared is the recommended variant against the bundle's fp32 graph (itself
proven against the original at conversion), output by output, and the task metric of both
on the labels. Only the metric's output column and the labels are gathered (a few numbers
per row); the inputs are never held together.

``evaluate_in_process`` is the same measurement with ``benchmarks`` on data that fits:
the two agree (tests/convert_model/fleet/test_data.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.parity import OutputParity, compare
from convert_model.core.errors import UsageError

FORMATS = (".csv", ".npz")
_LABELS = ("labels", "label")


@dataclass(frozen=True, kw_only=True)
class LargeEval:
    """Figures over a whole eval set: the recommended variant against fp32, and both metrics."""

    rows: int
    variant: str
    metric: str
    output: str
    fp32_metric: float
    variant_metric: float
    parity: tuple[OutputParity, ...]
    engine: str  # "ray-data" or "in-process"

    def to_json(self) -> dict[str, Any]:
        """Return the fleet.json form."""
        return {
            "rows": self.rows, "variant": self.variant, "metric": self.metric,
            "output": self.output, "fp32_metric": self.fp32_metric,
            "variant_metric": self.variant_metric, "engine": self.engine,
            "parity": [p.to_json() for p in self.parity],
        }


def count_rows(path: Path) -> int:
    """Examples in an eval file without loading it: CSV/JSONL lines, or the labels' length."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with zipfile.ZipFile(path) as archive:
            member = next((f"{k}.npy" for k in _LABELS if f"{k}.npy" in archive.namelist()), None)
            if member is None:
                raise UsageError(f"{path}: the eval set has no 'labels' array")
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, _ = read(f)
        return int(shape[0])
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return lines - 1 if suffix == ".csv" else lines


def write_head(path: Path, rows: int, dest: Path) -> Path:
    """Write the first ``rows`` examples of an eval file to ``dest`` (same format)."""
    path, dest = Path(path), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as data:
            np.savez(dest, **{k: data[k][:rows] for k in data.files})
        return dest
    keep = rows + 1 if path.suffix.lower() == ".csv" else rows  # a CSV keeps its header
    with path.open("rb") as src, dest.open("wb") as out:
        for line in src:
            if keep == 0:
                break
            if line.strip():
                out.write(line)
                keep -= 1
    return dest


@dataclass(frozen=True, kw_only=True)
class _Graphs:
    """What a batch needs to be run: the bundle's two graphs and how rows become inputs."""

    fp32: Path
    variant: Path | None  # None: the recommended variant is fp32 itself
    variant_name: str
    inputs: Mapping[str, str]  # input name -> dtype
    features: tuple[str, ...] | None  # tabular: CSV columns of the one input, in order


def _graphs(bundle: Path, candidate: Path | None) -> _Graphs:
    from convert_model.bundle.manifest import read_manifest

    manifest = read_manifest(bundle)
    fp32 = manifest.variant("fp32")
    chosen = manifest.variant(manifest.recommended) if manifest.recommended else fp32
    variant = None if chosen.name == "fp32" else bundle / chosen.file
    schema = manifest.input_schema or {}
    return _Graphs(
        fp32=bundle / fp32.file,
        variant=Path(candidate) if candidate is not None else variant,
        variant_name=Path(candidate).name if candidate is not None else chosen.name,
        inputs={i["name"]: i["dtype"] for i in manifest.inputs},
        features=tuple(schema["features"]) if schema.get("features") else None,
    )


def _feed(graphs: _Graphs, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Model inputs from a batch: its input columns, or a CSV's feature columns stacked."""
    if graphs.features and not all(n in batch for n in graphs.inputs):
        (name, dtype), = graphs.inputs.items()
        columns = [_numbers(batch[f]) for f in graphs.features]
        return {name: np.stack(columns, axis=1).astype(dtype)}
    return {n: np.asarray(batch[n]).astype(d) for n, d in graphs.inputs.items()}


def _numbers(column: np.ndarray) -> np.ndarray:
    """A CSV column as floats; empty cells (nulls) are NaN, as the in-process reader has it."""
    if column.dtype == object:
        return np.asarray([np.nan if v is None else v for v in column], dtype=np.float64)
    return column.astype(np.float64)


def _column_case(reference: np.ndarray) -> bool:
    """Outputs whose cosine ``compare`` takes over the whole column (one value per row)."""
    return reference.ndim == 1 or reference.size == reference.shape[0]


class BatchScorer:
    """Ray Data's callable class: one onnxruntime session per graph, held by each actor."""

    def __init__(self, graphs: _Graphs, output: str, threads: int) -> None:
        from converters import onnx_graph

        self.graphs, self.output = graphs, output
        self._run = onnx_graph.run
        self.fp32 = onnx_graph.session(graphs.fp32, threads)
        self.variant = onnx_graph.session(graphs.variant, threads) if graphs.variant else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per row: both graphs' metric output and the label; the batch's parity on row 0."""
        feed = _feed(self.graphs, batch)
        reference = self._run(self.fp32, feed)
        candidate = self._run(self.variant, feed) if self.variant is not None else reference
        rows = len(next(iter(feed.values())))
        sums = {}
        for name, ref in reference.items():
            if _column_case(ref) and np.issubdtype(ref.dtype, np.floating):
                a = np.nan_to_num(ref.astype(np.float64)).ravel()
                b = np.nan_to_num(candidate[name].astype(np.float64)).ravel()
                sums[name] = [float(a @ b), float(a @ a), float(b @ b)]
        # A batch's parity records ride on its first row: map_batches returns rows, and the
        # driver needs one record set per batch to fold (max, min, weighted mean).
        summary = json.dumps({
            "rows": rows,
            "records": [r.to_json() for r in compare(reference, candidate)],
            "sums": sums,
        })
        label = next(k for k in _LABELS if k in batch)
        return {
            "labels": np.asarray(batch[label]),
            "fp32": reference[self.output],
            "variant": candidate[self.output],
            "parity": np.asarray([summary] + [""] * (rows - 1), dtype=object),
        }


def _fold(batches: Sequence[Mapping[str, Any]]) -> tuple[OutputParity, ...]:
    """One record per output over every batch, as ``compare`` gives over all rows at once."""
    total = sum(b["rows"] for b in batches)
    merged: list[OutputParity] = []
    first = [OutputParity.from_json(r) for r in batches[0]["records"]]
    for index, start in enumerate(first):
        parts = [OutputParity.from_json(b["records"][index]) for b in batches]
        weights = [b["rows"] for b in batches]
        top1 = None
        if start.top1_agreement is not None:
            # Counts, not fractions, add up exactly: the result equals one mean over all rows.
            agreeing = sum(round(p.top1_agreement * w) for p, w in zip(parts, weights, strict=True))
            top1 = float(agreeing / total)
        cosine = None
        if start.min_cosine is not None:
            cosine = min(p.min_cosine for p in parts)  # type: ignore[type-var]
            if start.name in batches[0]["sums"]:
                dot, aa, bb = np.sum([b["sums"][start.name] for b in batches], axis=0)
                both_zero = aa == 0 and bb == 0
                value = 1.0 if both_zero else dot / (np.sqrt(aa) * np.sqrt(bb))
                cosine = float(np.nan_to_num(value, nan=-1.0))
        merged.append(replace(
            start,
            check=-1,
            shape=(total, *start.shape[1:]) if start.shape else start.shape,
            shape_match=all(p.shape_match for p in parts),
            max_abs_diff=max(p.max_abs_diff for p in parts),
            max_rel_diff=max(p.max_rel_diff for p in parts),
            min_cosine=cosine,
            top1_agreement=top1,
        ))
    return tuple(merged)


def _dataset(path: Path) -> Any:
    import ray

    if path.suffix.lower() == ".csv":
        return ray.data.read_csv(str(path))
    if path.suffix.lower() == ".npz":
        import pyarrow as pa
        from ray.data.extensions import ArrowTensorArray

        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        count = len(next(iter(arrays.values())))
        step = max(1, -(-count // 16))
        tables = [
            pa.table({
                k: ArrowTensorArray.from_numpy(v[i : i + step]) if v.ndim > 1 else v[i : i + step]
                for k, v in arrays.items()
            })
            for i in range(0, count, step)
        ]
        return ray.data.from_arrow(tables)
    raise UsageError(f"{path}: Ray Data evaluation reads {', '.join(FORMATS)}, not {path.suffix}")


@contextlib.contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Keep Ray Data's per-operator progress off the fleet's console (restored after)."""
    import ray

    context = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    bars, level = context.enable_progress_bars, logger.level
    context.enable_progress_bars = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        context.enable_progress_bars = bars
        logger.setLevel(level)


def evaluate_with_ray_data(
    bundle: Path, data: Path, metric: str, output: str, *, threads: int = 1,
    batch_size: int = 4096, concurrency: int = 1, candidate: Path | None = None,
) -> LargeEval:
    """Stream ``data`` through the bundle on the running Ray instance; fold the figures.

    ``candidate`` judges another graph against fp32 instead of the recommended variant.
    """
    import ray

    from benchmarks.metrics import score

    graphs = _graphs(Path(bundle), candidate)
    summaries: list[dict[str, Any]] = []
    labels, fp32, variant = [], [], []
    with _quiet_ray_data():
        scored = _dataset(Path(data)).map_batches(
            BatchScorer,
            fn_constructor_kwargs={"graphs": graphs, "output": output, "threads": threads},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=threads,
        )
        for batch in scored.iter_batches(batch_format="numpy", batch_size=None):
            summaries += [json.loads(s) for s in batch["parity"] if s]
            labels.append(batch["labels"])
            fp32.append(batch["fp32"])
            variant.append(batch["variant"])
    if not summaries:
        raise UsageError(f"{data}: no rows")
    all_labels = np.concatenate(labels)
    return LargeEval(
        rows=int(len(all_labels)), variant=graphs.variant_name, metric=metric, output=output,
        fp32_metric=score(metric, np.concatenate(fp32), all_labels),
        variant_metric=score(metric, np.concatenate(variant), all_labels),
        parity=_fold(summaries), engine="ray-data",
    )


def evaluate_in_process(
    bundle: Path, data: Path, metric: str, output: str, *, threads: int = 1,
    batch_size: int = 16, candidate: Path | None = None,
) -> LargeEval:
    """The same figures in this process, with ``benchmarks``' eval reader and ``compare``."""
    from benchmarks.evaluate import EVAL_CHECK, load_eval_set, run_batched, task_score
    from converters import onnx_graph

    graphs = _graphs(Path(bundle), candidate)
    dtypes = {n: np.dtype(d) for n, d in graphs.inputs.items()}
    eval_set = load_eval_set(Path(data), metric, output, list(graphs.inputs), dtypes,
                             graphs.features)
    fp32_session = onnx_graph.session(graphs.fp32, threads)
    reference = run_batched(lambda f: onnx_graph.run(fp32_session, f), eval_set.inputs,
                            batch_size)
    outputs = reference
    if graphs.variant is not None:
        session = onnx_graph.session(graphs.variant, threads)
        outputs = run_batched(lambda f: onnx_graph.run(session, f), eval_set.inputs,
                              batch_size)
    return LargeEval(
        rows=eval_set.size, variant=graphs.variant_name, metric=metric, output=output,
        fp32_metric=task_score(eval_set, reference),
        variant_metric=task_score(eval_set, outputs),
        parity=tuple(compare(reference, outputs, EVAL_CHECK)), engine="in-process",
    )
