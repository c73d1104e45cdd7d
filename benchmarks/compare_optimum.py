"""Benchmark: convert-model's recommended variant against Hugging Face Optimum's own pipeline.

Optimum's pipeline is the one its docs teach: optimum-onnx export, ``ORTOptimizer`` at O2,
``ORTQuantizer`` with the ``avx512_vnni`` dynamic preset (per-tensor, as documented, and
per-channel). Everything runs in one process, interleaved, at one thread count, on the
same batch-1 input (``--feed full``: every position a real token; ``--feed padded``: an
eval sentence padded to the length, where convert-model's padding cut pays), against
PyTorch eager fp32; accuracy is measured on the model's eval
set against PyTorch's outputs: the task metric, and for sentence encoders
(feature-extraction) the cosine of the sentence embeddings (hidden states averaged over
the attention mask), the worst over the eval set.

The budgeted view: per pipeline (PyTorch, convert-model, Optimum), the fastest variant
that keeps the int8 budget: sentence cosine >= 0.99 for a sentence encoder, else the task
metric within 1 point of PyTorch's; and its speed-up over PyTorch.

Run: ``python -m benchmarks.compare_optimum reference:sentence-outliers`` (or
``reference:readability``, or a model folder with ``--eval-data FILE.npz --metric NAME``).
Prints Markdown tables; ``--json`` writes the rows too.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.evaluate import run_batched
from benchmarks.latency import LatencyConfig, measure_interleaved
from convert_model.core.names import BASELINE

MIN_SENTENCE_COSINE = 0.99
MAX_METRIC_DROP = 0.01  # one point of a metric in [0, 1]
TASKS = {"text-classification": ("ORTModelForSequenceClassification",
                                 "AutoModelForSequenceClassification", "logits"),
         "feature-extraction": ("ORTModelForFeatureExtraction", "AutoModel",
                                "last_hidden_state")}


@dataclass(frozen=True, kw_only=True)
class Row:
    """One variant's figures; ``pipeline`` is who made it (PyTorch, convert-model, Optimum)."""

    pipeline: str
    name: str
    p50_ms: float
    speedup: float
    min_cosine: float
    sentence_cosine: float | None
    max_abs_diff: float
    task_metric: float | None
    within_budget: bool


def _cosines(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Min cosine over rows; for one value per row, the cosine of the whole column."""
    a = reference.reshape(len(reference), -1).astype(np.float64)
    b = candidate.reshape(len(candidate), -1).astype(np.float64)
    if a.shape[1] == 1:
        a, b = a.T, b.T
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def sentence_embeddings(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hidden states (N, tokens, D) averaged over the tokens ``mask`` (N, tokens) keeps."""
    weights = mask.astype(np.float64)[..., None]
    return (hidden.astype(np.float64) * weights).sum(1) / np.maximum(weights.sum(1), 1.0)


def optimum_pipeline(checkpoint: Path, work: Path, task: str) -> dict[str, tuple[Path, str]]:
    """Export, optimise (O2) and quantize (avx512_vnni, dynamic) the way Optimum's docs do.

    Returns name → (graph, note). onnxruntime's quantizer fails on the O2 graph ("Unable to
    find data type", the trap users report); the fallback users take is to quantize the
    plain export, and the note says so.
    """
    import optimum.onnxruntime as ort_optimum
    from optimum.onnxruntime import ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig

    if task not in TASKS:
        raise SystemExit(f"the Optimum comparison covers {', '.join(TASKS)}; got {task}")
    exported = getattr(ort_optimum, TASKS[task][0]).from_pretrained(checkpoint, export=True)
    exported.save_pretrained(work)
    ORTOptimizer.from_pretrained(exported).optimize(
        save_dir=work, optimization_config=AutoOptimizationConfig.O2())
    graphs = {"O2 fp32": (work / "model_optimized.onnx", "")}
    for per_channel in (False, True):
        config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=per_channel)
        label = f"avx512_vnni dynamic int8 {'per-channel' if per_channel else 'per-tensor'}"
        out = work / ("per-channel" if per_channel else "per-tensor")
        try:
            ORTQuantizer.from_pretrained(work, file_name="model_optimized.onnx").quantize(
                save_dir=out, quantization_config=config)
            graphs[label] = (out / "model_optimized_quantized.onnx", "of the O2 graph")
        except RuntimeError:
            ORTQuantizer.from_pretrained(work, file_name="model.onnx").quantize(
                save_dir=out, quantization_config=config)
            graphs[label] = (out / "model_quantized.onnx",
                             "of the export (quantizing the O2 graph fails)")
    return graphs


FEEDS = ("full", "padded")


def timed_feed(inputs: Mapping[str, np.ndarray], length: int, kind: str) -> dict[str, np.ndarray]:
    """The batch-1 input every runner is timed on, from the first eval row.

    ``full``: ``length`` real tokens (the row's real tokens repeated), mask all ones.
    ``padded``: the row as a client padding to ``length`` sends it: its real tokens, then
    pad id 0 under a zero mask (a longer row is cut).
    """
    if kind not in FEEDS:
        raise ValueError(f"feed must be one of {FEEDS}, got {kind!r}")
    mask = np.asarray(inputs["attention_mask"][:1]) if "attention_mask" in inputs else None
    real = int(mask.sum()) if mask is not None and kind == "full" else None
    feed = {}
    for name, value in inputs.items():
        row = np.asarray(value[:1])
        if real is not None:
            row = np.resize(row[:, :real], (1, length))
            if name == "attention_mask":
                row = np.ones_like(row)
        elif row.shape[-1] >= length:
            row = row[..., :length]
        else:
            row = np.pad(row, [(0, 0)] * (row.ndim - 1) + [(0, length - row.shape[-1])])
        feed[name] = row
    return feed


def compare(checkpoint: str, *, eval_data: Path | None, metric: str | None, threads: int,
            rounds: int, work: Path, log: Callable[[str], None],
            seq_len: int = 128, feed_kind: str = "full") -> tuple[list[Row], dict[str, object]]:
    """Convert with convert-model and with Optimum; time and score all against PyTorch."""
    import torch
    import transformers

    from benchmarks.metrics import score
    from convert_model import convert
    from converters.onnx_graph import runner as ort_runner

    log("convert-model: converting (defaults, no sweep)")
    started = time.perf_counter()
    result = convert(checkpoint, out=work / "ours", eval_data=eval_data, metric=metric,
                     threads=threads, force=True, sweep=None)
    conversion_s = time.perf_counter() - started
    m = result.manifest
    source = Path(m.source["path"])
    eval_path = eval_data or _reference_eval(checkpoint)
    metric_name = metric or (m.measurement.get("eval") or {}).get("metric")
    task = m.task or ""
    output = TASKS.get(task, ("", "", "logits"))[2]
    recommended = m.variant(m.recommended or BASELINE)
    log("optimum: export, O2, avx512_vnni dynamic int8 (per-tensor and per-channel)")
    theirs = optimum_pipeline(source, work / "optimum", task)

    torch.set_num_threads(threads)
    model = getattr(transformers, TASKS[task][1]).from_pretrained(source).eval()
    with np.load(eval_path) as data:
        labels = data["labels"]
        inputs = {i["name"]: data[i["name"]] for i in m.inputs}

    def torch_run(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        return {output: getattr(out, output).numpy()}

    runners: dict[str, tuple[str, Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]]]
    runners = {"PyTorch eager fp32": ("PyTorch", torch_run)}
    runners[f"{recommended.name} (recommended)"] = (
        "convert-model", ort_runner(work / "ours" / recommended.file, threads))
    if recommended.name != "fp32":
        runners["fp32 (the export)"] = ("convert-model", ort_runner(work / "ours" / "model.onnx",
                                                                    threads))
    for label, (graph, note) in theirs.items():
        runners[f"{label} {note}".strip()] = ("Optimum", ort_runner(graph, threads))
    log(f"accuracy on {len(labels)} eval examples")
    outputs = {name: run_batched(run, inputs)[output] for name, (_, run) in runners.items()}
    feed = timed_feed(inputs, seq_len, feed_kind)
    real = int(feed["attention_mask"].sum()) if "attention_mask" in feed else None
    log(f"latency: batch 1, sequence {feed[next(iter(feed))].shape[-1]} ({real} real tokens), "
        f"{threads} threads")
    timings = measure_interleaved({n: functools.partial(r, feed) for n, (_, r) in runners.items()},
                                  LatencyConfig(warmup=3, rounds=rounds, max_seconds=600))
    base = outputs["PyTorch eager fp32"]
    base_ms = timings["PyTorch eager fp32"].p50_ms
    base_metric = score(metric_name, base, labels) if metric_name else None
    mask = inputs.get("attention_mask")
    rows = []
    for name, out in outputs.items():
        sentence = None
        ref, cand = base, out
        if output == "last_hidden_state" and mask is not None:
            sentence = _cosines(sentence_embeddings(base, mask), sentence_embeddings(out, mask))
            # Token states compared at real tokens: padded positions are nobody's output.
            keep = mask.astype(bool)[..., None]
            ref, cand = np.where(keep, base, 0.0), np.where(keep, out, 0.0)
        task_metric = score(metric_name, out, labels) if metric_name else None
        rows.append(Row(pipeline=runners[name][0], name=name, p50_ms=timings[name].p50_ms,
                        speedup=base_ms / timings[name].p50_ms, min_cosine=_cosines(ref, cand),
                        sentence_cosine=sentence, max_abs_diff=float(np.abs(cand - ref).max()),
                        task_metric=task_metric,
                        within_budget=_keeps_budget(sentence, task_metric, base_metric)))
    facts = {"checkpoint": checkpoint, "task": task, "threads": threads, "rounds": rounds,
             "seq_len": seq_len, "feed": feed_kind, "real_tokens": real,
             "conversion_s": round(conversion_s, 1),
             "recommended": recommended.name, "pytorch_metric": base_metric}
    return rows, facts


def _keeps_budget(sentence: float | None, metric: float | None, base: float | None) -> bool:
    """Sentence cosine >= 0.99 for a sentence encoder, else the metric within 1 point."""
    if sentence is not None:
        return sentence >= MIN_SENTENCE_COSINE
    if metric is None or base is None:
        return False
    return base - metric <= MAX_METRIC_DROP + 1e-12


def budgeted(rows: list[Row]) -> dict[str, Row | None]:
    """Per pipeline, its fastest variant within budget (None when none is)."""
    best: dict[str, Row | None] = {}
    for row in rows:
        current = best.get(row.pipeline)
        if row.within_budget and (current is None or row.p50_ms < current.p50_ms):
            best[row.pipeline] = row
        else:
            best.setdefault(row.pipeline, None)
    return best


def markdown(rows: list[Row]) -> str:
    """Every variant, then the budgeted view, as Markdown tables."""
    lines = ["| pipeline | variant | p50 ms | speed-up vs PyTorch | min cosine | sentence cosine "
             "| task metric | within budget |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        sentence = f"{r.sentence_cosine:.5f}" if r.sentence_cosine is not None else "n/a"
        metric = f"{r.task_metric:.4f}" if r.task_metric is not None else "n/a"
        lines.append(f"| {r.pipeline} | {r.name} | {r.p50_ms:.2f} | {r.speedup:.2f}× | "
                     f"{r.min_cosine:.5f} | {sentence} | {metric} | "
                     f"{'yes' if r.within_budget else 'no'} |")
    best = budgeted(rows)
    ours, theirs = best.get("convert-model"), best.get("Optimum")
    lines += ["", "| pipeline | fastest within budget | p50 ms | speed-up vs PyTorch |",
              "|---|---|---:|---:|"]
    for pipeline, row in best.items():
        lines.append(f"| {pipeline} | {row.name} | {row.p50_ms:.2f} | {row.speedup:.2f}× |"
                     if row else f"| {pipeline} | none | | |")
    if ours and theirs:
        lines.append(f"\nconvert-model's best within budget is {theirs.p50_ms / ours.p50_ms:.2f}× "
                     "as fast as Optimum's.")
    return "\n".join(lines)


def _reference_eval(checkpoint: str) -> Path:
    import reference_models

    if not checkpoint.startswith("reference:"):
        raise SystemExit("give --eval-data and --metric for a model that is not a reference model")
    return reference_models.build(checkpoint.split(":", 1)[1]).eval_data


def main(argv: list[str] | None = None) -> int:
    """Command line: run the comparison and print the tables."""
    from convert_model.core.threads import usable_threads

    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_optimum", description=__doc__)
    p.add_argument("checkpoint", nargs="?", default="reference:sentence-outliers")
    p.add_argument("--eval-data", type=Path)
    p.add_argument("--metric")
    p.add_argument("--threads", type=int, default=min(2, usable_threads()))
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--seq-len", type=int, default=128, help="sequence length timed (batch 1)")
    p.add_argument("--feed", choices=FEEDS, default="full",
                   help="timed input: 'full' (every position a real token) or 'padded' (an "
                   "eval sentence padded to --seq-len, as clients padding to max_length send)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="convert-model-vs-optimum-") as tmp:
        rows, facts = compare(args.checkpoint, eval_data=args.eval_data, metric=args.metric,
                              threads=args.threads, rounds=args.rounds, work=Path(tmp),
                              seq_len=args.seq_len, feed_kind=args.feed,
                              log=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown(rows))
    print(f"\n{json.dumps(facts)}")
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "rows": [asdict(r) for r in rows]},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
