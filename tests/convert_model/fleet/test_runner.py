"""The fleet on a local Ray: one bad model is one failed row; dead workers are retried."""

from __future__ import annotations

import json
from pathlib import Path

from convert_model.bundle.verify import verify
from convert_model.fleet.report import read_rows
from convert_model.fleet.runner import run_fleet
from convert_model.fleet.spec import load_fleet
from tests.convert_model.fleet.conftest import FleetRun


def test_run_fleet_converts_three_and_reports_the_bad_one(fleet_run: FleetRun):
    assert fleet_run.exit_code == 1  # one model failed
    rows = read_rows(fleet_run.root)
    assert {n: r.status for n, r in rows.items()} == {
        "articlequality": "ok", "revertrisk-language-agnostic": "ok", "tagger": "ok",
        "broken": "failed",
    }
    broken = rows["broken"]
    assert broken.reason.startswith("load: ") and "broken.onnx" in broken.reason
    assert "\n" not in broken.reason
    assert not (fleet_run.root / "broken").exists()
    for name in ("articlequality", "revertrisk-language-agnostic", "tagger"):
        row = rows[name]
        assert verify(fleet_run.root / name).ok
        manifest = json.loads((fleet_run.root / name / "manifest.json").read_text())
        # fp32 or its graph-optimised twin, whichever timed faster: the row names the same
        assert row.recommended is not None and row.recommended == manifest["recommended"]
        assert row.speedup is not None and row.speedup > 0
        assert row.reserved_cpus == 1.0 and row.threads == 1 and row.node and row.node_ip
        assert manifest["measurement"]["threads"] == 1  # timed with its reservation
    assert not list(fleet_run.root.glob(".*.tmp-*"))


def test_run_fleet_never_times_two_models_on_a_node_at_once(fleet_run: FleetRun):
    rows = [r for r in read_rows(fleet_run.root).values() if r.status == "ok"]
    assert all(r.timing_windows for r in rows)  # each one timed holding the slot
    for node in {r.node for r in rows}:
        windows = sorted((w, r.name) for r in rows if r.node == node for w in r.timing_windows)
        for ((_, end), first), ((start, _), second) in zip(windows[:-1], windows[1:],
                                                           strict=True):
            assert end <= start, f"{first} and {second} timed at the same time"


def test_run_fleet_writes_json_markdown_and_html(fleet_run: FleetRun):
    data = json.loads((fleet_run.root / "fleet.json").read_text())
    assert data["status"] == "fail" and data["ray"]["cpus"] == 2.0
    assert [r["name"] for r in data["rows"]] == [
        "articlequality", "revertrisk-language-agnostic", "tagger", "broken"]
    markdown = (fleet_run.root / "fleet.md").read_text()
    assert "3/4 passed" in markdown and "| broken | failed |" in markdown
    assert "<table>" in (fleet_run.root / "fleet.html").read_text()


def test_run_fleet_evaluates_a_large_eval_set_with_ray_data(fleet_run: FleetRun):
    row = read_rows(fleet_run.root)["articlequality"]
    assert row.large_eval is not None and row.large_eval["engine"] == "ray-data"
    assert row.large_eval["rows"] == 400  # all of it; the conversion judged the first 100
    manifest = json.loads((fleet_run.root / "articlequality" / "manifest.json").read_text())
    assert manifest["measurement"]["eval"]["examples"] == 100
    assert 0.0 < row.large_eval["fp32_metric"] <= 1.0


def test_run_fleet_skips_bundles_up_to_date_when_run_again(fleet_run: FleetRun):
    spec = load_fleet(fleet_run.fleet_file)
    before = {n: (fleet_run.root / n / "manifest.json").stat().st_mtime_ns
              for n in ("articlequality", "tagger")}
    report = run_fleet(spec, log=lambda _: None)
    statuses = {r.name: r.status for r in report.rows}
    assert statuses == {"articlequality": "skipped", "revertrisk-language-agnostic": "skipped",
                        "tagger": "skipped", "broken": "failed"}
    for name, mtime in before.items():
        assert (fleet_run.root / name / "manifest.json").stat().st_mtime_ns == mtime


DYING_MODEL = '''
import os
import signal
from pathlib import Path

from torch import nn

ROOT = Path(r"{root}")


class Dies(nn.Module):
    """Kills its own process mid-conversion (while its bundle is being staged), KILLS times."""

    def __init__(self, name: str = "", kills: int = 1):
        super().__init__()
        self.name, self.kills = name, kills
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        marker = ROOT / f"{{self.name}}.killed"
        done = len(marker.read_text().splitlines()) if marker.exists() else 0
        if done < self.kills and any(ROOT.glob(f".{{self.name}}.tmp-*")):
            with marker.open("a") as f:
                f.write("killed\\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fc(x)
'''


def test_run_fleet_retries_a_killed_worker_once_and_leaves_no_partial_bundle(
    ray_local: None, tmp_path: Path
):
    import torch
    from safetensors.torch import save_file

    root = tmp_path / "bundles"
    root.mkdir()
    (tmp_path / "dies.py").write_text(DYING_MODEL.format(root=root), encoding="utf-8")
    torch.manual_seed(0)
    weights = {f"fc.{k}": v for k, v in torch.nn.Linear(4, 2).state_dict().items()}
    save_file(weights, str(tmp_path / "dies.safetensors"))
    entries = "".join(f"""
  - name: {name}
    checkpoint: dies.safetensors
    options:
      model_kwargs: {{name: {name}, kills: {kills}}}
""" for name, kills in (("dies-once", 1), ("dies-twice", 2)))
    (tmp_path / "fleet.yaml").write_text(f"""
root: bundles
defaults:
  precision: fp32
  sweep: "off"
  model_class: dies.py:Dies
  input_spec: "x:float32[batch,4]=2x4"
models:{entries}""", encoding="utf-8")
    report = run_fleet(load_fleet(tmp_path / "fleet.yaml"), log=lambda _: None)
    rows = {r.name: r for r in report.rows}
    assert rows["dies-once"].status == "ok" and rows["dies-once"].attempts == 2
    assert verify(root / "dies-once").ok
    assert rows["dies-twice"].status == "failed" and rows["dies-twice"].attempts == 2
    assert rows["dies-twice"].reason.startswith("worker died on 2 tries")
    assert not (root / "dies-twice").exists()
    assert not list(root.glob(".*.tmp-*"))  # no partial bundle either way
    assert len((root / "dies-twice.killed").read_text().splitlines()) == 2


def test_run_fleet_fails_a_model_whose_reservation_no_node_has(ray_local: None, tmp_path: Path):
    (tmp_path / "fleet.yaml").write_text("""
root: out
models:
  - checkpoint: reference:articlequality
    options: {threads: 3}
""", encoding="utf-8")
    report = run_fleet(load_fleet(tmp_path / "fleet.yaml"), log=lambda _: None)
    (row,) = report.rows
    assert row.status == "failed" and "exceeds the largest node's 2 CPUs" in row.reason


def test_run_fleet_reports_a_gate_failure_with_its_bundle_marked_failed(
    ray_local: None, tmp_path: Path
):
    (tmp_path / "fleet.yaml").write_text("""
root: out
models:
  - name: too-strict
    checkpoint: reference:articlequality
    options: {precision: fp32, sweep: "off", accuracy_budget: "fp32.max_abs_diff=0"}
""", encoding="utf-8")
    report = run_fleet(load_fleet(tmp_path / "fleet.yaml"), log=lambda _: None)
    (row,) = report.rows
    assert not report.ok and row.status == "gate-failed"
    assert "max abs diff" in row.reason and "> 0" in row.reason
    manifest = json.loads((tmp_path / "out" / "too-strict" / "manifest.json").read_text())
    assert manifest["status"] == "fail"
