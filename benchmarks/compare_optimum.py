"""Benchmark: convert-model's recommended variant against Hugging Face Optimum's own pipeline.

Optimum's pipeline is the one its docs teach: optimum-onnx export, ``ORTOptimizer`` at O2,
``ORTQuantizer`` with the ``avx512_vnni`` dynamic preset. Everything runs in one process,
interleaved, at one thread count, on the same batch-1 input, against PyTorch eager fp32;
accuracy is measured on the model's eval set against PyTorch's outputs.

Run: ``python -m benchmarks.compare_optimum reference:readability`` (or a model folder with
``--eval-data FILE.npz --metric spearman``). Prints a Markdown table; ``--json`` writes it too.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.evaluate import run_batched
from benchmarks.latency import LatencyConfig, measure_interleaved
from convert_model.core.names import BASELINE


@dataclass(frozen=True, kw_only=True)
class Row:
    """One pipeline's figures."""

    name: str
    p50_ms: float
    speedup: float
    min_cosine: float
    top1_agreement: float | None
    max_abs_diff: float
    task_metric: float | None


def _cosines(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Min cosine over rows; for one value per row, the cosine of the whole column."""
    a = reference.reshape(len(reference), -1).astype(np.float64)
    b = candidate.reshape(len(candidate), -1).astype(np.float64)
    if a.shape[1] == 1:
        a, b = a.T, b.T
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def optimum_pipeline(checkpoint: Path, work: Path, task: str) -> tuple[Path, Path, str]:
    """Export, optimise (O2) and quantize (avx512_vnni, dynamic) the way Optimum's docs do.

    Returns the O2 graph, the int8 graph, and a note. onnxruntime's quantizer fails on the
    O2 graph ("Unable to find data type", the trap users report); the fallback users take is
    to quantize the plain export, and the note says so.
    """
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig

    if task != "text-classification":
        raise SystemExit(f"the Optimum comparison covers text-classification; got {task}")
    exported = ORTModelForSequenceClassification.from_pretrained(checkpoint, export=True)
    exported.save_pretrained(work)
    ORTOptimizer.from_pretrained(exported).optimize(
        save_dir=work, optimization_config=AutoOptimizationConfig.O2())
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
    try:
        ORTQuantizer.from_pretrained(work, file_name="model_optimized.onnx").quantize(
            save_dir=work, quantization_config=config)
        return work / "model_optimized.onnx", work / "model_optimized_quantized.onnx", "O2 + int8"
    except RuntimeError:
        ORTQuantizer.from_pretrained(work, file_name="model.onnx").quantize(
            save_dir=work, quantization_config=config)
        return (work / "model_optimized.onnx", work / "model_quantized.onnx",
                "int8 of the export (quantizing the O2 graph fails)")


def _pad_to(row: np.ndarray, length: int) -> np.ndarray:
    """One eval row padded with zeros (pad id, masked out) or cut to ``length`` tokens."""
    if row.shape[-1] >= length:
        return row[..., :length]
    return np.pad(row, [(0, 0)] * (row.ndim - 1) + [(0, length - row.shape[-1])])


def compare(checkpoint: str, *, eval_data: Path | None, metric: str | None, threads: int,
            rounds: int, work: Path, log: Callable[[str], None], seq_len: int = 128) -> list[Row]:
    """Convert with convert-model and with Optimum; time and score both against PyTorch."""
    import torch

    from benchmarks.metrics import score
    from convert_model import convert
    from converters.onnx_graph import runner as ort_runner
    from optimizers.fuse import FuseConfig, fuse

    log("convert-model: converting (precision auto)")
    result = convert(checkpoint, out=work / "ours", eval_data=eval_data, metric=metric,
                     threads=threads, force=True)
    m = result.manifest
    source = Path(m.source["path"])
    eval_path = eval_data or _reference_eval(checkpoint)
    metric_name = metric or (m.measurement.get("eval") or {}).get("metric")
    recommended = m.variant(m.recommended or BASELINE)
    fused = fuse(work / "ours" / "model.onnx", work / "ours-fused.onnx",
                 FuseConfig(model_type=m.model_type)).path
    log("optimum: export, O2, avx512_vnni dynamic int8")
    their_o2, theirs, note = optimum_pipeline(source, work / "optimum", m.task or "")

    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(source).eval()
    with np.load(eval_path) as data:
        labels = data["labels"]
        inputs = {i["name"]: data[i["name"]] for i in m.inputs}

    def torch_run(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        return {"logits": out.logits.numpy()}

    runners: dict[str, Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]] = {
        "PyTorch eager fp32": torch_run,
        f"convert-model {recommended.name} (recommended)": ort_runner(
            work / "ours" / recommended.file, threads),
        "convert-model cpu-fp32 (fused)": ort_runner(fused, threads),
        "Optimum O2 fp32": ort_runner(their_o2, threads),
        f"Optimum avx512_vnni {note}": ort_runner(theirs, threads),
    }
    log(f"accuracy on {len(labels)} eval examples")
    outputs = {name: run_batched(run, inputs)["logits"] for name, run in runners.items()}
    feed = {k: _pad_to(v[:1], seq_len) for k, v in inputs.items()}
    log(f"latency: batch 1, sequence {feed[next(iter(feed))].shape[-1]}, {threads} threads")
    timings = measure_interleaved({n: functools.partial(r, feed) for n, r in runners.items()},
                                  LatencyConfig(warmup=3, rounds=rounds, max_seconds=600))
    base = outputs["PyTorch eager fp32"]
    base_ms = timings["PyTorch eager fp32"].p50_ms
    rows = []
    for name, out in outputs.items():
        top1 = float(np.mean(out.argmax(-1) == base.argmax(-1))) if out.shape[-1] > 1 else None
        rows.append(Row(name=name, p50_ms=timings[name].p50_ms,
                        speedup=base_ms / timings[name].p50_ms, min_cosine=_cosines(base, out),
                        top1_agreement=top1, max_abs_diff=float(np.abs(out - base).max()),
                        task_metric=score(metric_name, out, labels) if metric_name else None))
    return rows


def _reference_eval(checkpoint: str) -> Path:
    import reference_models

    if not checkpoint.startswith("reference:"):
        raise SystemExit("give --eval-data and --metric for a model that is not a reference model")
    return reference_models.build(checkpoint.split(":", 1)[1]).eval_data


def markdown(rows: list[Row]) -> str:
    """The comparison as a Markdown table."""
    lines = ["| pipeline | p50 ms | speed-up vs PyTorch | min cosine | top-1 agreement | "
             "max abs diff | task metric |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        top1 = f"{r.top1_agreement:.1%}" if r.top1_agreement is not None else "n/a"
        metric = f"{r.task_metric:.4f}" if r.task_metric is not None else "n/a"
        lines.append(f"| {r.name} | {r.p50_ms:.1f} | {r.speedup:.2f}× | {r.min_cosine:.5f} | "
                     f"{top1} | {r.max_abs_diff:.2e} | {metric} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the comparison and print the table."""
    from convert_model.core.threads import usable_threads

    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_optimum", description=__doc__)
    p.add_argument("checkpoint", nargs="?", default="reference:readability")
    p.add_argument("--eval-data", type=Path)
    p.add_argument("--metric")
    p.add_argument("--threads", type=int, default=min(2, usable_threads()))
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--seq-len", type=int, default=128, help="sequence length timed (batch 1)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="convert-model-vs-optimum-") as tmp:
        rows = compare(args.checkpoint, eval_data=args.eval_data, metric=args.metric,
                       threads=args.threads, rounds=args.rounds, work=Path(tmp),
                       seq_len=args.seq_len,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    table = markdown(rows)
    print(table)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


