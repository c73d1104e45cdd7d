"""What one fleet task does on its worker: skip an up-to-date bundle, or convert one model.

It runs inside a Ray task that reserved ``num_cpus`` = the model's thread count, and
converts with ``threads`` = that reservation (Ray's ``OMP_NUM_THREADS`` reaches PyTorch's
and the tree libraries' OpenMP, but onnxruntime sizes its pools from ``threads`` alone).
Its timing stages hold the node's timing slot (``slot.NodeSlotGuard``). Every outcome is a
row: a bad checkpoint is a failed row with its one-line reason, never an exception.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from convert_model.core.errors import ConvertModelError, ParityError, first_line, summary
from convert_model.fleet.report import FleetRow
from convert_model.fleet.spec import REFERENCE_PREFIX, ModelEntry

WORK_DIR = ".fleet"  # under the root: attempt counts and eval-set heads, never a bundle


def attempts_file(root: Path, name: str) -> Path:
    """Where a model's tasks count their attempts (the driver clears it before submitting)."""
    return Path(root) / WORK_DIR / f"{name}.attempts"


def _count_attempt(root: Path, name: str) -> int:
    path = attempts_file(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def _where() -> dict[str, Any]:
    """The node this task runs on and what it reserved there."""
    import ray

    context = ray.get_runtime_context()
    return {
        "node": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "reserved_cpus": context.get_assigned_resources().get("CPU"),
    }


def source_path(checkpoint: str) -> Path:
    """The checkpoint's file or folder on this node (a reference model is built if needed)."""
    if checkpoint.startswith(REFERENCE_PREFIX):
        import reference_models

        return reference_models.build(checkpoint[len(REFERENCE_PREFIX) :],
                                      progress=lambda _: None).checkpoint
    return Path(checkpoint)


def up_to_date(out: Path, entry: ModelEntry, previous: FleetRow | None) -> Any:
    """The bundle's manifest if it is up to date, else None (convert again).

    Up to date: it passed, was made from the same source bytes, toolchain and options, and
    verifies now.
    """
    from convert_model.bundle.manifest import MANIFEST_NAME, read_manifest
    from convert_model.bundle.verify import verify
    from convert_model.bundle.writer import toolchain_versions
    from convert_model.core.errors import BundleError
    from convert_model.core.hashing import sha256_files

    if previous is None or not previous.ok or previous.options_digest != entry.digest:
        return None
    if not (out / MANIFEST_NAME).is_file():
        return None
    try:
        manifest = read_manifest(out)
    except BundleError:
        return None
    if not manifest.passed or dict(manifest.toolchain) != toolchain_versions():
        return None
    source = source_path(entry.checkpoint).resolve()
    if Path(manifest.source["path"]) != source:
        return None
    root = source if source.is_dir() else source.parent
    files = [root / rel for rel in manifest.source["files"]]
    if not all(f.is_file() for f in files):
        return None
    if sha256_files(files, root)[0] != manifest.source["sha256"]:
        return None
    return manifest if verify(out).ok else None


def row_from_manifest(manifest: Any, **fields: Any) -> FleetRow:
    """A row with the bundle's figures: recommended variant, speed-up, parity, task metric."""
    name = manifest.recommended or "fp32"
    variant = manifest.variant(name)
    cosines = [p.min_cosine for p in variant.parity if p.min_cosine is not None]
    diffs = [p.max_abs_diff for p in variant.parity]
    return FleetRow(
        recommended=manifest.recommended,
        speedup=variant.speedup,
        min_cosine=min(cosines) if cosines else None,
        max_abs_diff=max(diffs) if diffs else None,
        task_metric=variant.task_metric,
        metric=(manifest.measurement.get("eval") or {}).get("metric"),
        source_sha256=manifest.source.get("sha256"),
        onnxruntime=manifest.toolchain.get("onnxruntime"),
        **fields,
    )


def convert_one(
    entry: ModelEntry, root: Path, run_id: str, force: bool, ray_data_rows: int,
    previous: FleetRow | None,
) -> FleetRow:
    """Convert ``entry`` into ``root/NAME`` (or find it up to date); always return its row."""
    start = time.perf_counter()
    root = Path(root)
    base: dict[str, Any] = {
        "name": entry.name, "checkpoint": entry.checkpoint, "threads": entry.threads,
        "options_digest": entry.digest, "attempts": _count_attempt(root, entry.name),
        "bundle": str(root / entry.name), **_where(),
    }
    try:
        return _convert(entry, root, run_id, force, ray_data_rows, previous, base, start)
    except ConvertModelError as e:
        reason = f"{e.stage}: {' '.join(first_line(e).split())}"
    except Exception as e:  # noqa: BLE001  one model's bug is its own failed row, not the fleet's
        reason = f"internal error: {' '.join(summary(e).split())}"
    return FleetRow(status="failed", reason=reason, wall_s=time.perf_counter() - start,
                    **{**base, "bundle": None})


def _convert(
    entry: ModelEntry, root: Path, run_id: str, force: bool, ray_data_rows: int,
    previous: FleetRow | None, base: dict[str, Any], start: float,
) -> FleetRow:
    from convert_model import convert
    from convert_model.bundle.manifest import MANIFEST_NAME
    from convert_model.core.timing_slot import guarded
    from convert_model.fleet.data import count_rows, write_head
    from convert_model.fleet.slot import NodeSlotGuard
    from convert_model.progress import Progress

    out = root / entry.name
    if not force:
        manifest = up_to_date(out, entry, previous)
        if manifest is not None:
            kept = {"large_eval": previous.large_eval} if previous else {}
            return row_from_manifest(
                manifest, status="skipped", wall_s=time.perf_counter() - start,
                reason="bundle up to date (same source sha256, toolchain and options; verified)",
                **base, **kept,
            )
    options = dict(entry.options)
    large_eval = None
    eval_data = options.get("eval_data")
    if eval_data is not None and count_rows(eval_data) > ray_data_rows:
        head = root / WORK_DIR / f"{entry.name}.eval-head{Path(eval_data).suffix}"
        options["eval_data"] = write_head(eval_data, ray_data_rows, head)
        large_eval = {"data": str(eval_data), "metric": options.get("metric"),
                      "output": options.get("metric_output")}
    guard = NodeSlotGuard(run_id)
    # A folder that holds a bundle is the fleet's to replace; anything else only with --force.
    replace_out = force or (out / MANIFEST_NAME).is_file()
    status, reason = "ok", ""
    with guarded(guard):
        try:
            result = convert(entry.checkpoint, out=out, force=replace_out,
                             progress=Progress(total=6, enabled=False), **options)
        except ParityError as e:
            if getattr(e, "result", None) is None:
                raise
            result = e.result  # type: ignore[attr-defined]
            status = "gate-failed"
            reason = " ".join((e.failures[0] if e.failures else first_line(e)).split())
    return row_from_manifest(
        result.manifest, status=status, reason=reason, wall_s=time.perf_counter() - start,
        timing_wait_s=round(guard.waited_s, 3), timing_windows=tuple(guard.windows),
        large_eval=large_eval, **base,
    )
