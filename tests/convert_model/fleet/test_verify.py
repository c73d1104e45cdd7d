"""``convert-model fleet --verify ROOT``: every bundle re-checked; a tampered one is flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from convert_model.cli import main
from convert_model.fleet.verify import bundles_under
from tests.convert_model.fleet.conftest import FleetRun


def copy_bundles(fleet_run: FleetRun, tmp_path: Path, names: tuple[str, ...]) -> Path:
    root = tmp_path / "root"
    for name in names:
        shutil.copytree(fleet_run.root / name, root / "team" / name)
    return root


def test_verify_root_flags_a_tampered_bundle(fleet_run: FleetRun, tmp_path: Path):
    root = copy_bundles(fleet_run, tmp_path, ("articlequality", "tagger"))
    graph = root / "team" / "tagger" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the weights
    graph.write_bytes(bytes(data))
    assert main(["fleet", "--verify", str(root)]) == 1
    report = json.loads((root / "fleet-verify.json").read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert rows["team/articlequality"]["status"] == "ok"
    assert rows["team/tagger"]["status"] == "failed"
    assert "model.onnx: sha256 differs" in rows["team/tagger"]["reason"]
    assert "| team/tagger | failed |" in (root / "fleet-verify.md").read_text()


def test_verify_root_retimes_the_kept_graphs(fleet_run: FleetRun, tmp_path: Path):
    root = copy_bundles(fleet_run, tmp_path, ("revertrisk-language-agnostic",))
    code = main(["fleet", "--verify", str(root), "--retime"])
    (row,) = json.loads((root / "fleet-verify.json").read_text())["rows"]
    # Timed again, fp32 and the recommended variant; whether it kept its lead is a figure of
    # this machine's moment, so only the shape of the finding is checked.
    assert code == (0 if row["status"] == "ok" else 1)
    if row["status"] == "ok":
        assert row["reason"].startswith("retimed p50 ms: fp32 ")
        assert row["recommended"] in row["reason"]
    else:
        assert row["reason"].startswith(f"retime: {row['recommended']} is now")


def test_bundles_under_skips_hidden_and_staging_folders(fleet_run: FleetRun, tmp_path: Path):
    root = copy_bundles(fleet_run, tmp_path, ("articlequality",))
    shutil.copytree(root / "team" / "articlequality", root / ".articlequality.tmp-1-ab")
    assert bundles_under(root) == [root / "team" / "articlequality"]
