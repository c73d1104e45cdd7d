"""``convert-model serve OUT`` and ``convert-model verify OUT --server URL``.

``serve`` runs the bundle's own predictor (``OUT/serving``) exactly as its container does:
``python -m serving --bundle OUT`` from the bundle folder, replacing this process, so
SIGTERM reaches the server and drains it. ``verify --server`` sends the stored check
inputs over HTTP (v2 raw tensors) and compares the answers with the stored references by
the same budgets as ``verify``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert_model.core.errors import UsageError
from convert_model.core.names import BASELINE

V2_TO_NUMPY = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64,
               "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


def serve_parser(parser_class: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The ``serve`` flags."""
    p = parser_class(
        prog="convert-model serve",
        description="Start a KServe model server (v1, v2, /metrics) on a bundle, locally.",
    )
    p.add_argument("out", type=Path, help="bundle folder")
    p.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")
    p.add_argument("--name", help="model name in the URLs (default: the bundle's service name)")
    p.add_argument("--threads", type=int,
                   help="onnxruntime intra-op threads (default: the cgroup CPU quota)")
    p.add_argument("--max-batch", type=int, default=32, help="rows per batch (default: 32)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="how long a short batch waits for more requests (default: 2)")
    p.add_argument("--max-queue", type=int, default=256,
                   help="rows queued before 503 + Retry-After (default: 256)")
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024,
                   help="largest request body (default: 8 MiB)")
    p.add_argument("--wait-when-idle", action="store_true",
                   help="hold even a lone request up to --max-wait-ms (default: only under load)")
    p.add_argument("--spin", action="store_true",
                   help="let onnxruntime's idle threads spin: lower latency at batch 1 on cores "
                   "the server has to itself; slower on shared ones (default: off)")
    return p


def serve_command(out: Path, args: argparse.Namespace) -> list[str]:
    """The command line the bundle's container runs, with these settings."""
    from convert_model.bundle.deploy import service_name
    from convert_model.bundle.manifest import read_manifest

    out = Path(out)
    if not (out / "serving" / "__main__.py").is_file():
        raise UsageError(f"{out}: no serving/ predictor; convert it again with this version")
    manifest = read_manifest(out)
    name = args.name or service_name(manifest.to_json(), _report(out))
    for flag in ("port", "max_batch", "max_queue", "max_body_bytes"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    command = [sys.executable, "-m", "serving", "--bundle", str(out.resolve()), "--name", name,
               "--host", args.host, "--port", str(args.port), "--max-batch", str(args.max_batch),
               "--max-wait-ms", str(args.max_wait_ms), "--max-queue", str(args.max_queue),
               "--max-body-bytes", str(args.max_body_bytes)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    if args.wait_when_idle:
        command.append("--wait-when-idle")
    if args.spin:
        command.append("--spin")
    return command


def _report(out: Path) -> dict[str, Any]:
    import json

    path = out / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_serve(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> int:
    """Replace this process with the bundle's server (never returns on success)."""
    args = serve_parser(parser_class).parse_args(argv)
    command = serve_command(args.out, args)
    print(f"serving {args.out} at http://{args.host}:{args.port} "
          f"(v1 /v1/models/{command[command.index('--name') + 1]}:predict, v2, /metrics)",
          flush=True)
    os.chdir(args.out)  # the bundle's serving/ and runtime/ come first, as in the container
    os.execv(sys.executable, command)
    return 0  # not reached


def _v2_inputs(feed: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    names = {np.dtype(v): k for k, v in V2_TO_NUMPY.items()}
    return [{"name": n, "datatype": names[a.dtype], "shape": list(a.shape),
             "data": a.reshape(-1).tolist()} for n, a in feed.items()]


def verify_server(out: Path, url: str, *, timeout: float = 60.0) -> list[str]:
    """Send each stored check input to ``url`` (v2); every output outside the budget, one line.

    Raises:
        UsageError: when the server cannot be reached or answers with an error.
    """
    import httpx

    from benchmarks.parity import compare, failures
    from convert_model.bundle.deploy import service_name
    from convert_model.bundle.manifest import read_manifest
    from convert_model.bundle.verify import load_sets

    out = Path(out)
    manifest = read_manifest(out)
    variant = manifest.variant(manifest.recommended or BASELINE)
    base = url.rstrip("/")
    problems: list[str] = []
    with httpx.Client(timeout=timeout) as client:
        try:
            listed = client.get(f"{base}/v2/models").json().get("models") or []
        except (httpx.HTTPError, ValueError) as e:
            raise UsageError(f"--server {url}: cannot reach the server ({e})") from e
        name = service_name(manifest.to_json(), _report(out))
        name = name if name in listed else (listed[0] if len(listed) == 1 else name)
        if manifest.generation is not None:
            return verify_generation(out, base, name, manifest.generation.to_json(), client)
        inputs = load_sets(out / manifest.sample_inputs)
        references = load_sets(out / manifest.reference_outputs)
        for check, (feed, reference) in enumerate(zip(inputs, references, strict=True)):
            response = client.post(f"{base}/v2/models/{name}/infer",
                                   json={"inputs": _v2_inputs(feed)})
            if response.status_code != 200:
                raise UsageError(f"--server {url}: check {check} answered "
                                 f"{response.status_code}: {response.text[:300]}")
            answered = {
                o["name"]: np.asarray(o["data"], dtype=V2_TO_NUMPY[o["datatype"]]).reshape(
                    o["shape"])
                for o in response.json()["outputs"] if o["datatype"] in V2_TO_NUMPY
            }
            missing = sorted(set(reference) - set(answered))
            if missing:
                problems.append(f"check {check}: the server does not answer {missing}")
                continue
            got = {k: answered[k] for k in reference}
            records = compare(reference, got, check)
            problems.extend(f"server ({variant.name}) check {check}: {line}"
                            for line in failures(records, variant.budget))
    return problems


def _pad_token(out: Path) -> int | None:
    """``pad_token_id`` of the generation config, which the stored rows were trimmed of."""
    import json

    for name in ("generation_config.json", "config.json"):
        path = out / "generation" / name
        if path.is_file():
            pad = json.loads(path.read_text(encoding="utf-8")).get("pad_token_id")
            return pad if isinstance(pad, int) else None
    return None


def _trim(sequence: list[int], pad: int | None) -> list[int]:
    end = len(sequence)
    while pad is not None and end > 0 and sequence[end - 1] == pad:
        end -= 1
    return sequence[:end]


def verify_generation(out: Path, url: str, name: str, generation: dict[str, Any],
                      client: Any) -> list[str]:
    """Send the stored generation prompts (v1, greedy); compare with the original's tokens.

    The recommended variant must reach its budget's ``min_greedy_identical`` (the fp32
    graphs: every prompt identical).
    """
    with np.load(out / "generation" / "check.npz", allow_pickle=False) as data:
        ids, mask, expected = data["input_ids"], data["attention_mask"], data["greedy"]
    prompts = [row[m.astype(bool)].tolist() for row, m in zip(ids, mask, strict=True)]
    instances = [{"input_ids": p, "parameters": {"num_beams": 1}} for p in prompts]
    response = client.post(f"{url}/v1/models/{name}:predict", json={"instances": instances})
    if response.status_code != 200:
        raise UsageError(f"--server {url}: answered {response.status_code}: "
                         f"{response.text[:300]}")
    pad = _pad_token(out)
    encoder_decoder = generation.get("split", {}).get("kind") == "encoder-decoder"
    same = 0
    for prompt, got, want in zip(prompts, response.json()["predictions"], expected.tolist(),
                                 strict=True):
        new = got["sequences"][1 if encoder_decoder else len(prompt):]  # as stored: new tokens
        same += _trim(new, pad) == [t for t in want if t != -1]
    share = same / len(expected)
    recommended = generation.get("recommended") or BASELINE
    variants = generation.get("variants", [])
    chosen: dict[str, Any] = next((v for v in variants if v["name"] == recommended), {})
    bar = float((chosen.get("budget") or {}).get("min_greedy_identical") or 0.0)
    if share < bar:
        return [f"server (generation {recommended}): {share:.1%} of greedy outputs identical to "
                f"the original's, below {bar:.0%}"]
    return []


def run_verify_server(out: Path, url: str) -> int:
    """Print the outcome of ``verify_server``; 0 when every answer is within budget."""
    problems = verify_server(out, url)
    if problems:
        print(f"{out}: verification through {url} failed", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"{out}: ok through {url} (answers within budget of the stored references)")
    return 0
