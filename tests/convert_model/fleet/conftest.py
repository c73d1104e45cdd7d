"""A local Ray instance limited to 2 CPUs for the fleet tests, and the fleet they share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.models import CUSTOM_SPEC, Zoo


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """Ray on this machine with 2 CPUs, started for the session and shut down after it."""
    ray = pytest.importorskip("ray")
    from convert_model.fleet.slot import NAMESPACE

    ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}})
    try:
        yield
    finally:
        ray.shutdown()


def write_csv(path: Path, features: list[str], matrix: np.ndarray, labels: np.ndarray) -> Path:
    """An eval CSV: a header, one column per feature (empty for NaN) and a label column."""
    lines = [",".join([*features, "label"])]
    for row, label in zip(matrix.tolist(), labels.tolist(), strict=True):
        cells = ["" if np.isnan(v) else repr(v) for v in row]
        lines.append(",".join([*cells, str(int(label))]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tagger_eval(path: Path, rows: int, seed: int = 0) -> Path:
    """A labelled eval set for the zoo's TinyTagger: features, mask and a class label."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        features=rng.standard_normal((rows, 12)).astype(np.float32),
        mask=rng.integers(0, 2, (rows, 12)).astype(np.float32),
        labels=rng.integers(0, 4, rows).astype(np.int64),
    )
    return path


@dataclass(frozen=True)
class FleetRun:
    """A fleet converted once per session through the command line."""

    fleet_file: Path
    root: Path
    exit_code: int
    eval_csv: Path


ARTICLEQUALITY_FEATURES = [
    "characters", "references", "wikilinks", "headings", "images", "templates", "categories",
    "infobox",
]


@pytest.fixture(scope="session")
def fleet_run(ray_local: None, model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory
              ) -> FleetRun:
    """Four tiny models of different forms, one of them bad, as one fleet on local Ray.

    articlequality's eval set (400 rows) is larger than the fleet's ray_data_rows (100), so
    it is also judged over every row with Ray Data.
    """
    import reference_models
    from convert_model.cli import main

    folder = tmp_path_factory.mktemp("fleet")
    built = reference_models.build("articlequality", progress=lambda _: None)
    with np.load(built.eval_data) as data:
        eval_csv = write_csv(folder / "aq_eval.csv", ARTICLEQUALITY_FEATURES,
                             data["input"], data["labels"])
    (folder / "broken.onnx").write_bytes(b"this is not an ONNX graph")
    fleet_file = folder / "fleet.yaml"
    fleet_file.write_text(f"""
root: bundles
ray_data_rows: 100
defaults:
  precision: fp32
  sweep: "off"
  threads: 1
models:
  - checkpoint: reference:articlequality
    options:
      eval_data: aq_eval.csv
      metric: accuracy
      metric_output: probabilities
  - checkpoint: reference:revertrisk-language-agnostic
  - name: tagger
    checkpoint: {model_zoo.custom_safetensors}
    options:
      model_class: "{model_zoo.model_file}:TinyTagger"
      input_spec: "{CUSTOM_SPEC}"
  - name: broken
    checkpoint: broken.onnx
""", encoding="utf-8")
    code = main(["fleet", str(fleet_file)])
    return FleetRun(fleet_file=fleet_file, root=folder / "bundles", exit_code=code,
                    eval_csv=eval_csv)
