"""Ray Data evaluation of a bundle equals the in-process one on data that fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert_model.fleet.data import (
    count_rows,
    evaluate_in_process,
    evaluate_with_ray_data,
    write_head,
)
from tests.convert_model.fleet.conftest import FleetRun, tagger_eval


def assert_same(ray_figures, local):
    assert ray_figures.rows == local.rows and ray_figures.variant == local.variant
    assert ray_figures.fp32_metric == pytest.approx(local.fp32_metric, abs=1e-12)
    assert ray_figures.variant_metric == pytest.approx(local.variant_metric, abs=1e-12)
    for a, b in zip(ray_figures.parity, local.parity, strict=True):
        assert (a.name, a.check, a.shape, a.shape_match) == (b.name, b.check, b.shape,
                                                             b.shape_match)
        assert a.max_abs_diff == pytest.approx(b.max_abs_diff, rel=1e-6, abs=1e-9)
        assert a.max_rel_diff == pytest.approx(b.max_rel_diff, rel=1e-6, abs=1e-9)
        assert (a.min_cosine is None) == (b.min_cosine is None)
        if a.min_cosine is not None:
            assert a.min_cosine == pytest.approx(b.min_cosine, abs=1e-9)
        assert a.top1_agreement == b.top1_agreement


def int8_graph(bundle: Path, dest: Path, calibration: Path) -> Path:
    """Static int8 (QDQ): fixed scales, so a row's outputs do not depend on its batch."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Rows(CalibrationDataReader):
        def __init__(self) -> None:
            with np.load(calibration) as data:
                self.feeds = iter([{"features": data["features"][i : i + 10],
                                    "mask": data["mask"][i : i + 10]} for i in range(0, 50, 10)])

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(bundle / "model.onnx", dest, Rows(), quant_format=QuantFormat.QDQ)
    return dest


def test_ray_data_evaluation_equals_in_process_on_a_csv(fleet_run: FleetRun):
    bundle = fleet_run.root / "articlequality"
    args = (bundle, fleet_run.eval_csv, "accuracy", "probabilities")
    local = evaluate_in_process(*args)
    streamed = evaluate_with_ray_data(*args, batch_size=64)  # 400 rows: 7 batches
    assert local.rows == 400 and local.engine == "in-process" and streamed.engine == "ray-data"
    assert_same(streamed, local)


def test_ray_data_evaluation_equals_in_process_for_an_int8_graph_on_an_npz(
    fleet_run: FleetRun, tmp_path: Path
):
    bundle = fleet_run.root / "tagger"
    import json

    output = json.loads((bundle / "manifest.json").read_text())["outputs"][0]["name"]
    data = tagger_eval(tmp_path / "eval.npz", rows=300)
    candidate = int8_graph(bundle, tmp_path / "model.int8.onnx", data)
    args = (bundle, data, "accuracy", output)
    local = evaluate_in_process(*args, candidate=candidate)
    streamed = evaluate_with_ray_data(*args, candidate=candidate, batch_size=50)
    assert local.variant == "model.int8.onnx"
    assert any(p.max_abs_diff > 0 for p in local.parity)  # int8 really differs from fp32
    assert_same(streamed, local)


def test_count_rows_and_write_head_keep_the_format(fleet_run: FleetRun, tmp_path: Path):
    assert count_rows(fleet_run.eval_csv) == 400
    head = write_head(fleet_run.eval_csv, 10, tmp_path / "head.csv")
    assert count_rows(head) == 10
    assert head.read_text().splitlines()[0] == fleet_run.eval_csv.read_text().splitlines()[0]
    data = tagger_eval(tmp_path / "eval.npz", rows=30)
    assert count_rows(data) == 30
    head_npz = write_head(data, 7, tmp_path / "head.npz")
    with np.load(head_npz) as small, np.load(data) as full:
        assert count_rows(head_npz) == 7
        np.testing.assert_array_equal(small["features"], full["features"][:7])
