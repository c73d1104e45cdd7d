"""Run a fleet on Ray: one task per model, honest timing, one row per model whatever happens.

Timing design. Conversions side by side on one machine corrupt each other's latency, so:

1. Each model's task reserves ``num_cpus`` = its thread count (``threads``, default 1), and
   converts with ``threads`` = that reservation: onnxruntime's pools and PyTorch's threads
   are sized from it (Ray's ``OMP_NUM_THREADS`` reaches OpenMP, which onnxruntime ignores).
   Ray never places more reserved threads on a node than it has CPUs.
2. On each node one named actor (``slot.TimingSlot``, no CPU of its own) is the node's
   timing slot. The pipeline marks its timing stages (the latency run with its sweep, and
   the generation timing) with ``convert_model.core.timing_slot``; in a fleet those hold
   the slot, so at most one model per node measures at a time, and the others' work runs
   on the other reserved CPUs. A slot whose holder died is taken over by the next task.
3. The Ray Data evaluation of large eval sets runs after every conversion is done.

So the threads a model is timed with are its own, and no other model times beside it; the
row records the node, the reservation and how long the model waited for the slot. A
worker that dies (SIGKILL, out of memory) is retried once (``max_retries=1``), then is a
failed row; bundles are staged and renamed into place, so neither leaves a partial one.

By default a local Ray instance is started for the run with this machine's usable cores
(affinity and cgroup quota) and shut down after; ``--address`` joins a running cluster
(e.g. KubeRay), whose nodes need convert-model installed and the root on shared storage.
An instance already running in this process (``ray.is_initialized()``) is used as it is.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from convert_model.core.errors import UsageError, first_line
from convert_model.fleet.report import (
    FleetReport,
    FleetRow,
    progress_line,
    read_rows,
    rows_in_order,
    write_reports,
)
from convert_model.fleet.spec import FleetSpec, ModelEntry
from convert_model.fleet.task import attempts_file, convert_one

MAX_RETRIES = 1  # a worker that dies is retried once
Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[dict[str, Any]]:
    """Connect to Ray (start a local instance unless ``address``); yield what it offers."""
    import ray

    from convert_model.core.threads import usable_threads
    from convert_model.fleet.slot import NAMESPACE

    owned = not ray.is_initialized()
    if owned:
        env = {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}
        try:
            if address:
                ray.init(address=address, namespace=NAMESPACE, runtime_env=env,
                         log_to_driver=False)
            else:
                ray.init(num_cpus=usable_threads(), include_dashboard=False,
                         namespace=NAMESPACE, runtime_env=env, log_to_driver=False)
        except ConnectionError as e:
            raise UsageError(f"--address {address}: cannot connect to Ray ({e})") from e
    try:
        nodes = [
            {"node": n["NodeID"], "ip": n["NodeManagerAddress"],
             "cpus": n["Resources"].get("CPU", 0)}
            for n in ray.nodes() if n["Alive"]
        ]
        yield {"address": address or "local", "nodes": nodes,
               "cpus": sum(n["cpus"] for n in nodes)}
    finally:
        if owned:
            ray.shutdown()


def _crashed_row(entry: ModelEntry, root: Path, error: BaseException, wall_s: float) -> FleetRow:
    """A failed row for a task whose worker died on every try; its staging folders go."""
    from convert_model.bundle.staging import remove_stale

    remove_stale(root / entry.name)
    path = attempts_file(root, entry.name)
    tries = len(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else 0
    return FleetRow(
        name=entry.name, checkpoint=entry.checkpoint, status="failed", threads=entry.threads,
        reserved_cpus=float(entry.threads), attempts=max(tries, 1), wall_s=wall_s,
        options_digest=entry.digest,
        reason=f"worker died on {max(tries, 1)} tries: {' '.join(first_line(error).split())}",
    )


def run_fleet(
    spec: FleetSpec, *, address: str | None = None, max_parallel: int | None = None,
    force: bool = False, log: Log = _stderr,
) -> FleetReport:
    """Convert every model of ``spec`` as Ray tasks; write and return the fleet's report."""
    import ray

    from convert_model.fleet.slot import remove_slots

    if max_parallel is not None and max_parallel < 1:
        raise UsageError(f"--max-parallel must be >= 1, got {max_parallel}")
    start = time.perf_counter()
    previous = read_rows(spec.root)
    rows: dict[str, FleetRow] = {}
    total = len(spec.models)
    with ray_session(address) as info:
        largest = max((n["cpus"] for n in info["nodes"]), default=0)
        queue: list[ModelEntry] = []
        for entry in spec.models:
            if entry.threads > largest:
                rows[entry.name] = FleetRow(
                    name=entry.name, checkpoint=entry.checkpoint, status="failed",
                    threads=entry.threads, options_digest=entry.digest,
                    reason=f"threads {entry.threads} exceeds the largest node's {largest:g} "
                    "CPUs; it could never be scheduled",
                )
                log(progress_line(len(rows), total, rows[entry.name]))
            else:
                queue.append(entry)
        run_id = uuid.uuid4().hex[:8]
        task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(convert_one)
        pending: dict[Any, tuple[ModelEntry, float]] = {}
        limit = max_parallel or max(len(queue), 1)
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    entry = queue.pop(0)
                    attempts_file(spec.root, entry.name).unlink(missing_ok=True)
                    ref = task.options(num_cpus=entry.threads, name=f"convert {entry.name}").remote(
                        entry, spec.root, run_id, force, spec.ray_data_rows,
                        previous.get(entry.name),
                    )
                    pending[ref] = (entry, time.perf_counter())
                    log(f"       {entry.name}: queued ({entry.threads} CPU)")
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    entry, submitted = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        row = _crashed_row(entry, spec.root, e, time.perf_counter() - submitted)
                    rows[entry.name] = row
                    log(progress_line(len(rows), total, row))
            for name, row in list(rows.items()):
                if row.status == "ok" and row.large_eval and "data" in row.large_eval:
                    log(f"       {name}: full eval set with Ray Data ({row.large_eval['data']})")
                    rows[name] = _large_eval(row, info["cpus"])
                    log(f"       {name}: {rows[name].status}, {rows[name].reason}")
        finally:
            remove_slots(run_id)
    report = FleetReport(
        rows=rows_in_order(rows, [m.name for m in spec.models]),
        wall_s=time.perf_counter() - start, ray=info, fleet_file=str(spec.path),
    )
    write_reports(spec.root, report)
    return report


def _large_eval(row: FleetRow, cpus: float) -> FleetRow:
    """Parity and task metric over the whole eval set, with Ray Data; a miss fails the gate."""
    import dataclasses

    from benchmarks.parity import failures, metric_failure
    from convert_model.bundle.manifest import read_manifest
    from convert_model.fleet.data import evaluate_with_ray_data

    if row.bundle is None or not row.large_eval:
        return row
    bundle = Path(row.bundle)
    manifest = read_manifest(bundle)
    wanted = row.large_eval
    output = wanted.get("output") or (manifest.measurement.get("eval") or {}).get("output")
    metric = wanted.get("metric") or row.metric
    try:
        figures = evaluate_with_ray_data(
            bundle, Path(wanted["data"]), str(metric), str(output),
            concurrency=max(1, int(cpus) - 1),
        )
    except Exception as e:  # noqa: BLE001  a full set that cannot be run is this row's finding
        return dataclasses.replace(
            row, status="gate-failed",
            reason=f"full eval set: {' '.join(first_line(e).split())}",
        )
    budget = manifest.variant(figures.variant).budget
    lines = failures(figures.parity, budget)
    drop = metric_failure(figures.metric, figures.fp32_metric, figures.variant_metric, budget)
    lines += [drop] if drop else []
    return dataclasses.replace(
        row,
        status="gate-failed" if lines else row.status,
        reason=(f"full eval set vs fp32: {lines[0]}" if lines else
                f"full eval set ({figures.rows} rows): {figures.metric} "
                + (f"{figures.fp32_metric:.4f}" if figures.variant == "fp32" else
                   f"fp32 {figures.fp32_metric:.4f}, {figures.variant} "
                   f"{figures.variant_metric:.4f}")),
        large_eval=figures.to_json(),
    )
