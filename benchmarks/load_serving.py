"""Load benchmark: the served recommended variant against the original served as Lift Wing does.

Both servers run under the same CPU limit (``taskset`` on the same cores, the same thread
count), take the same requests from one HTTP client (httpx, asyncio) in one run, level by
level, the two servers alternating: closed-loop concurrency 1, 4, 16 and 64 for a fixed
time each, then an open-loop overload at 10x the bundle server's measured throughput against
a bounded queue. Requests are revert-risk style text pairs with a realistic, long-tailed mix
of lengths (most short, some past the model's 128-token limit). Prints a Markdown table::

    python benchmarks/load_serving.py BUNDLE [--cores 0,1] [--seconds 8]

The bundle server is the bundle's own ``serving/`` (``python -m serving``); the original is
``benchmarks/serving_original.py`` on the checkpoint the manifest names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 4, 16, 64)


def request_texts(vocab: Path, count: int, seed: int = 0) -> list[list[str]]:
    """Edit pairs from the tokenizer's words: 70% 5-20 words, 25% 20-60, 5% 60-200."""
    words = [w for w in vocab.read_text(encoding="utf-8").split()
             if w.isalpha() and not w.startswith("[")]
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        band = rng.choice(3, p=[0.7, 0.25, 0.05])
        low, high = ((5, 20), (20, 60), (60, 200))[band]
        n = int(rng.integers(low, high))
        original = [str(w) for w in rng.choice(words, n)]
        edited = list(original)
        edited.insert(int(rng.integers(n + 1)), str(rng.choice(words)))
        pairs.append([" ".join(original), " ".join(edited)])
    return pairs


@dataclass
class Level:
    """What one server did at one load level."""

    server: str
    level: str
    ok: int
    rejected: int
    seconds: float
    latencies_ms: list[float]
    failed: int = 0

    @property
    def rps(self) -> float:
        """Answered requests per second."""
        return self.ok / self.seconds

    def p(self, q: float) -> float:
        """Latency percentile of answered requests, ms."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def start(command: list[str], cores: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a server pinned to ``cores``."""
    with log.open("w") as out:
        return subprocess.Popen(["taskset", "-c", cores, *command], stdout=out,
                                stderr=subprocess.STDOUT, env=env)


async def wait_ready(client: Any, url: str, name: str, timeout: float = 120) -> None:
    """Poll the v1 model readiness until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        import httpx

        try:
            status = (await client.get(f"{url}/v1/models/{name}")).status_code
        except (OSError, httpx.TransportError):  # not listening yet: keep polling
            status = None
        if status == 200:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout} s")


async def closed_loop(client: Any, url: str, texts: Sequence[list[str]], concurrency: int,
                      seconds: float, server: str) -> Level:
    """``concurrency`` clients, each sending one request after the other for ``seconds``."""
    latencies: list[float] = []
    counts = {"ok": 0, "rejected": 0}
    stop = time.perf_counter() + seconds
    index = [0]

    async def worker() -> None:
        while time.perf_counter() < stop:
            body = {"instances": [texts[index[0] % len(texts)]]}
            index[0] += 1
            start = time.perf_counter()
            response = await client.post(url, json=body)
            if response.status_code == 200:
                latencies.append((time.perf_counter() - start) * 1000)
                counts["ok"] += 1
            else:
                counts["rejected"] += 1

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    level = Level(server, f"c={concurrency}", counts["ok"], counts["rejected"],
                  time.perf_counter() - begin, latencies)
    print(f"{server} {level.level}: {level.rps:.1f} req/s", file=sys.stderr, flush=True)
    return level


async def open_loop(client: Any, url: str, texts: Sequence[list[str]], rate: float,
                    seconds: float, server: str) -> tuple[Level, float]:
    """Requests sent at ``rate`` per second regardless of answers; the offered rate achieved."""
    import httpx

    latencies: list[float] = []
    counts = {"ok": 0, "rejected": 0, "failed": 0}

    async def one(i: int) -> None:
        start = time.perf_counter()
        try:
            response = await client.post(url, json={"instances": [texts[i % len(texts)]]},
                                         timeout=10)
        except httpx.HTTPError:  # the client's own pool or timeout gave up: not answered
            counts["failed"] += 1
            return
        if response.status_code == 200:
            latencies.append((time.perf_counter() - start) * 1000)
            counts["ok"] += 1
        else:
            counts["rejected"] += 1

    tasks, begin, sent = [], time.perf_counter(), 0
    while time.perf_counter() - begin < seconds:
        due = int((time.perf_counter() - begin) * rate)
        while sent < due:
            tasks.append(asyncio.ensure_future(one(sent)))
            sent += 1
        await asyncio.sleep(0.001)
    offered = sent / (time.perf_counter() - begin)
    _, late = await asyncio.wait(tasks, timeout=max(10.0, 2 * seconds))
    for task in late:  # still unanswered well after the burst: counted as given up
        task.cancel()
    counts["failed"] += len(late)
    return Level(server, "overload", counts["ok"], counts["rejected"],
                 time.perf_counter() - begin, latencies, counts["failed"]), offered


async def server_histogram(client: Any, base: str) -> dict[float, float]:
    """The server's own latency histogram of answered v1 requests: bucket bound -> count."""
    text = (await client.get(f"{base}/metrics")).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("serving_request_latency_seconds_bucket{") and 'code="200"' in line \
                and 'protocol="v1"' in line:
            bound = line.split('le="')[1].split('"')[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.split()[-1])
    return buckets


def histogram_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """Upper bucket bound (ms) under which 99% of the requests between two scrapes fell."""
    delta = {b: after.get(b, 0.0) - before.get(b, 0.0) for b in sorted(after)}
    total = delta.get(float("inf"), 0.0)
    for bound, count in delta.items():
        if total and count >= 0.99 * total:
            return bound * 1000
    return float("nan")


async def agreement(client: Any, urls: dict[str, str], texts: Sequence[list[str]]) -> dict:
    """Top-1 agreement and max |P| difference of the bundle server vs the original's."""
    got: dict[str, list[dict]] = {}
    for server, url in urls.items():
        got[server] = []
        for start in range(0, len(texts), 16):
            response = await client.post(url, json={"instances": list(texts[start:start + 16])})
            response.raise_for_status()
            got[server] += response.json()["predictions"]
    a, b = got["bundle"], got["original"]
    pa = np.asarray([list(p["probabilities"].values()) for p in a])
    pb = np.asarray([list(p["probabilities"].values()) for p in b])
    return {"top1_agreement": float(np.mean(pa.argmax(1) == pb.argmax(1))),
            "max_abs_diff_probability": float(np.abs(pa - pb).max()), "examples": len(texts)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start both servers, drive every level, stop them; the figures."""
    import httpx

    bundle = args.bundle.resolve()
    manifest = json.loads((bundle / "manifest.json").read_text())
    source = Path(manifest["source"]["path"])
    threads = len(args.cores.split(","))
    # Passive OpenMP waits, as the conversion measured the original: a spinning pool on a
    # shared core stalls for a scheduler period.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": "PASSIVE"}
    if args.client_cores:
        os.sched_setaffinity(0, {int(c) for c in args.client_cores.split(",")})
    ports = {"bundle": 18571, "original": 18572, "bundle-bounded": 18573}
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    processes = {
        "bundle": start([sys.executable, "-m", "serving", "--bundle", str(bundle), "--name", "m",
                         "--host", "127.0.0.1", "--port", str(ports["bundle"]),
                         "--threads", str(threads), "--max-queue", str(args.max_queue)],
                        args.cores, logs / "bundle.log", {**env, "PYTHONPATH": str(bundle)}),
        "original": start([sys.executable, str(ROOT / "benchmarks" / "serving_original.py"),
                           "--folder", str(source), "--port", str(ports["original"]),
                           "--threads", str(threads), "--name", "m"],
                          args.cores, logs / "original.log", env),
    }
    urls = {k: f"http://127.0.0.1:{p}/v1/models/m:predict" for k, p in ports.items()
            if k != "bundle-bounded"}
    texts = request_texts(bundle / "vocab.txt", 2000)
    results: list[Level] = []
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    try:
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            for server in urls:
                await wait_ready(client, f"http://127.0.0.1:{ports[server]}", "m")
            for server, url in urls.items():  # warm both
                await closed_loop(client, url, texts, 2, 1.0, server)
            quality = await agreement(client, urls, texts[:300])
            for concurrency in LEVELS:
                for server, url in urls.items():
                    results.append(await closed_loop(client, url, texts, concurrency,
                                                     args.seconds, server))
            saturated = next(r for r in results if r.server == "bundle" and r.level == "c=16")
            for process in processes.values():
                process.terminate()
                process.wait(timeout=60)
            # Overload: a fresh bundle server whose queue bound is sized for latency.
            processes["bounded"] = start(
                [sys.executable, "-m", "serving", "--bundle", str(bundle), "--name", "m",
                 "--host", "127.0.0.1", "--port", str(ports["bundle-bounded"]),
                 "--threads", str(threads), "--max-queue", str(args.overload_queue)],
                args.cores, logs / "bounded.log", {**env, "PYTHONPATH": str(bundle)})
            await wait_ready(client, f"http://127.0.0.1:{ports['bundle-bounded']}", "m")
            base = f"http://127.0.0.1:{ports['bundle-bounded']}"
            bounded = f"{base}/v1/models/m:predict"
            scrapes = [await server_histogram(client, base)]
            results.append(await closed_loop(client, bounded, texts, 1, args.seconds,
                                             "bundle-bounded"))
            scrapes.append(await server_histogram(client, base))
            overload, offered = await open_loop(client, bounded, texts,
                                                10 * saturated.rps, args.seconds,
                                                "bundle-bounded")
            scrapes.append(await server_histogram(client, base))
            results.append(overload)
            server_p99 = (histogram_p99_ms(scrapes[0], scrapes[1]),
                          histogram_p99_ms(scrapes[1], scrapes[2]))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
    return {"results": results, "quality": quality, "offered_rps": offered,
            "server_p99_ms": server_p99,
            "threads": threads, "cores": args.cores, "client_cores": args.client_cores,
            "overload_queue": args.overload_queue}


def table(figures: dict[str, Any]) -> str:
    """The Markdown table and the goal lines."""
    rows = ["| level | server | req/s | p50 ms | p99 ms | answered | 503 | client gave up |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in figures["results"]:
        rows.append(f"| {r.level} | {r.server} | {r.rps:.1f} | {r.p(50):.1f} | {r.p(99):.1f} | "
                    f"{r.ok} | {r.rejected} | {r.failed} |")
    by = {(r.server, r.level): r for r in figures["results"]}
    b16, o16 = by[("bundle", "c=16")], by[("original", "c=16")]
    unloaded = by[("bundle-bounded", "c=1")]
    overload = by[("bundle-bounded", "overload")]
    share = overload.rejected / max(1, overload.ok + overload.rejected)
    q = figures["quality"]
    rows += [
        "",
        f"- c=16: bundle {b16.rps / o16.rps:.2f}x the original's req/s; p99 {b16.p(99):.1f} ms "
        f"vs {o16.p(99):.1f} ms (goal: >= 4x at a lower p99)",
        f"- overload (offered {figures['offered_rps']:.0f} req/s, 10x the bundle's c=16 rate, "
        f"--max-queue {figures['overload_queue']}): "
        f"{share:.0%} answered 503; admitted p99 {overload.p(99):.1f} ms = "
        f"{overload.p(99) / unloaded.p(99):.2f}x the unloaded p99 {unloaded.p(99):.1f} ms "
        "(goal: < 2x); inside the server (its own histogram, bucket bound): admitted p99 <= "
        f"{figures['server_p99_ms'][1]:.0f} ms vs <= {figures['server_p99_ms'][0]:.0f} ms "
        "unloaded",
        f"- answers: top-1 agreement {q['top1_agreement']:.1%}, max |P| difference "
        f"{q['max_abs_diff_probability']:.2e} over {q['examples']} requests",
        f"- CPU limit: cores {figures['cores']} (taskset), {figures['threads']} thread(s) each; "
        f"client on cores {figures['client_cores']}",
    ]
    return "\n".join(rows)


def main() -> None:
    """Parse the flags, run, print the table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("--cores", default="1", help="CPU cores both servers are pinned to")
    p.add_argument("--client-cores", default="0", help="CPU cores the HTTP client runs on")
    p.add_argument("--seconds", type=float, default=8.0, help="time per level and server")
    p.add_argument("--max-queue", type=int, default=64, help="the bundle server's queue bound")
    p.add_argument("--overload-queue", type=int, default=4,
                   help="the overload server's queue bound (requests in flight)")
    p.add_argument("--logs", default="/tmp/load_serving", help="folder for the servers' logs")
    args = p.parse_args()
    print(table(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
