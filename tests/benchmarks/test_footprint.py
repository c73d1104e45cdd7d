"""Footprint: cold start and peak memory of a graph, measured in a fresh child process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.footprint import Footprint, _rss_mb, file_size, measure_footprint


def _big_graph(path: Path, width: int) -> Path:
    """x[batch, width] @ W: a graph whose weight alone is width² floats."""
    weight = numpy_helper.from_array(np.ones((width, width), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def test_measure_footprint_reports_cold_start_and_the_graph_memory(tmp_path: Path):
    width = 2048  # a 16 MiB weight
    path = _big_graph(tmp_path / "big.onnx", width)
    first = {"x": np.ones((1, width), np.float32)}
    largest = {"x": np.ones((4, width), np.float32)}
    f = measure_footprint(path, first, largest, threads=1)
    assert f.size_bytes == file_size(path) > 16 * 1024 * 1024
    assert f.cold_start_ms == pytest.approx(f.session_ms + f.first_run_ms, rel=1e-6)
    assert f.session_ms > 0 and f.first_run_ms > 0
    assert f.model_rss_mb > 10, "the 16 MiB weight must show in the child's peak memory"
    assert f.peak_input == {"x": [4, width]}
    assert Footprint.from_json(f.to_json()).to_json() == f.to_json()


def test_measure_footprint_raises_with_the_child_error(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(RuntimeError, match="footprint of bad.onnx failed"):
        measure_footprint(bad, {"x": np.ones((1, 2), np.float32)}, {}, threads=1)


def test_rss_reads_linux_high_water_mark(tmp_path: Path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n")
    assert _rss_mb(status) == 200.0
    assert _rss_mb(tmp_path / "missing") > 0, "falls back to ru_maxrss"
