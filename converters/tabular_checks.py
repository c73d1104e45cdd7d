"""Check a tree model's file before its native library reads it.

XGBoost and LightGBM trust their files: a claimed feature count is allocated as it is (a
1 KB JSON claiming 10^9 features builds 10^9 names), and an out-of-range child index is
followed into memory that is not the tree's (a segfault). So the structure is checked here
first: feature and class counts within limits, every array of a tree of the right length,
every child index inside its tree, every split feature below the feature count. A binary
file this cannot parse (XGBoost ``.ubj``) is loaded first in a child process that reports
back, so a crash there is a message, not the end of the conversion.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from convert_model.core.errors import CheckpointError
from convert_model.core.limits import MAX_FEATURES, load_json

MAX_CLASSES = 10_000
MAX_TREES = 1_000_000
MAX_NODES = 10_000_000
_PROBE_SECONDS = 120
_PROBE_MEMORY = 8 * 2**30
_INT_LIST = re.compile(r"^-?\d+(?: -?\d+)*$")


def _count(value: Any, path: Path, field: str, limit: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise CheckpointError(f"{path}: {field} is {value!r}, expected a whole number") from None
    if not 0 <= number <= limit:
        raise CheckpointError(f"{path}: {field} is {number:,}; expected 0 to {limit:,}")
    return number


def _int_list(value: Any, path: Path, field: str, length: int) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise CheckpointError(f"{path}: {field} must be a list of whole numbers")
    if len(value) != length:
        raise CheckpointError(f"{path}: {field} has {len(value)} entries; expected {length}")
    return value


def _check_xgboost_tree(tree: Mapping[str, Any], path: Path, where: str, features: int) -> None:
    left = tree.get("left_children")
    nodes = len(left) if isinstance(left, list) else 0
    if not 0 < nodes <= MAX_NODES:
        raise CheckpointError(f"{path}: {where}: left_children must list 1 to {MAX_NODES:,} nodes")
    param = tree.get("tree_param", {})
    if isinstance(param, Mapping) and "num_nodes" in param:
        declared = _count(param["num_nodes"], path, f"{where}: tree_param.num_nodes", MAX_NODES)
        if declared != nodes:
            raise CheckpointError(
                f"{path}: {where}: tree_param.num_nodes is {declared} but the tree has {nodes}"
            )
    left = _int_list(left, path, f"{where}: left_children", nodes)
    right = _int_list(tree.get("right_children"), path, f"{where}: right_children", nodes)
    splits = _int_list(tree.get("split_indices"), path, f"{where}: split_indices", nodes)
    for node, (a, b, feature) in enumerate(zip(left, right, splits, strict=True)):
        if (a == -1) != (b == -1):
            raise CheckpointError(f"{path}: {where}: node {node} has one child only")
        if a == -1:
            continue
        for child in (a, b):
            if not node < child < nodes:
                raise CheckpointError(
                    f"{path}: {where}: node {node} has child index {child}; expected "
                    f"{node + 1} to {nodes - 1}"
                )
        if not 0 <= feature < features:
            raise CheckpointError(
                f"{path}: {where}: node {node} splits on feature {feature}; the model has "
                f"{features} features"
            )


def check_xgboost(path: Path) -> None:
    """Validate a JSON XGBoost model here; load any other (UBJSON) in a child process first."""
    with path.open("rb") as f:
        head = f.read(64)
    if re.match(rb'\s*\{\s*"', head):
        check_xgboost_json(path)
    else:
        probe_xgboost(path)


def check_xgboost_json(path: Path) -> None:
    """Validate an XGBoost JSON model's counts and trees before xgboost reads it."""
    data = load_json(path.read_bytes(), path)
    learner = data.get("learner") if isinstance(data, dict) else None
    if not isinstance(learner, dict):
        raise CheckpointError(f"{path}: not an XGBoost JSON model (no 'learner' object)")
    param = learner.get("learner_model_param")
    if not isinstance(param, dict):
        raise CheckpointError(
            f"{path}: not a loadable XGBoost model (learner.learner_model_param is missing)"
        )
    features = _count(param.get("num_feature", 0), path, "learner_model_param.num_feature",
                      MAX_FEATURES)
    _count(param.get("num_class", 0), path, "learner_model_param.num_class", MAX_CLASSES)
    names = learner.get("feature_names", [])
    if not isinstance(names, list) or (names and len(names) != features):
        raise CheckpointError(
            f"{path}: learner.feature_names must list num_feature ({features}) names"
        )
    booster = learner.get("gradient_booster", {})
    model = booster.get("model") if isinstance(booster, dict) else None
    if isinstance(booster, dict) and booster.get("name") == "dart":
        inner = booster.get("gbtree", {})
        model = inner.get("model") if isinstance(inner, dict) else None
    if not isinstance(model, dict):
        return  # gblinear or a layout this check does not know: xgboost checks the rest
    trees = model.get("trees", [])
    if not isinstance(trees, list) or len(trees) > MAX_TREES:
        raise CheckpointError(f"{path}: gradient_booster trees must be a list of trees")
    for index, tree in enumerate(trees):
        if not isinstance(tree, dict):
            raise CheckpointError(f"{path}: tree {index} is not an object")
        _check_xgboost_tree(tree, path, f"tree {index}", features)


def _lightgbm_ints(block: Mapping[str, str], key: str, path: Path, where: str,
                   length: int) -> list[int]:
    text = block.get(key, "").strip()
    if length == 0:
        return []
    if not _INT_LIST.match(text):
        raise CheckpointError(f"{path}: {where}: {key} must be whole numbers")
    values = [int(v) for v in text.split()]
    if len(values) != length:
        raise CheckpointError(
            f"{path}: {where}: {key} has {len(values)} entries; expected {length}"
        )
    return values


def check_lightgbm_text(path: Path) -> None:
    """Validate a LightGBM model file's header and trees before LightGBM reads it."""
    text = path.read_text(encoding="utf-8", errors="replace")
    head, _, rest = text.partition("\nTree=")
    header = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    if "max_feature_idx" not in header:
        raise CheckpointError(f"{path}: not a LightGBM model (no max_feature_idx)")
    features = _count(header["max_feature_idx"], path, "max_feature_idx", MAX_FEATURES - 1) + 1
    _count(header.get("num_class", "1"), path, "num_class", MAX_CLASSES)
    names = header.get("feature_names", "").split()
    if names and len(names) != features:
        raise CheckpointError(
            f"{path}: feature_names lists {len(names)} names; max_feature_idx says {features}"
        )
    body = rest.split("\nend of trees", 1)[0]
    blocks = body.split("\nTree=") if rest else []
    if len(blocks) > MAX_TREES:
        raise CheckpointError(f"{path}: {len(blocks):,} trees; at most {MAX_TREES:,}")
    for block_text in blocks:
        number, _, block_body = block_text.partition("\n")
        where = f"Tree={number.strip()}"
        block = dict(line.split("=", 1) for line in block_body.splitlines() if "=" in line)
        leaves = _count(block.get("num_leaves", "1"), path, f"{where}: num_leaves", MAX_NODES)
        internal = max(leaves - 1, 0)
        split = _lightgbm_ints(block, "split_feature", path, where, internal)
        for key in ("left_child", "right_child"):
            for node, child in enumerate(_lightgbm_ints(block, key, path, where, internal)):
                if not (0 <= child < internal or 0 <= ~child < leaves):
                    raise CheckpointError(
                        f"{path}: {where}: {key} of node {node} is {child}; outside the tree"
                    )
        bad = [f for f in split if not 0 <= f < features]
        if bad:
            raise CheckpointError(
                f"{path}: {where}: split_feature {bad[0]} is outside the {features} features"
            )


def _limit_memory() -> None:  # preexec of the probe: a claimed size cannot take the machine
    resource.setrlimit(resource.RLIMIT_AS, (_PROBE_MEMORY, _PROBE_MEMORY))


_XGBOOST_PROBE = """
import json, sys, xgboost
booster = xgboost.Booster()
try:
    booster.load_model(sys.argv[1])
except xgboost.core.XGBoostError as e:
    print(json.dumps({"error": str(e).strip().splitlines()[0]}))
else:
    print(json.dumps({"features": booster.num_features()}))
"""


def probe_xgboost(path: Path, argv: Sequence[str] = ()) -> None:
    """Load a binary XGBoost model in a child process; CheckpointError if it fails or crashes."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _XGBOOST_PROBE, str(path), *argv], capture_output=True,
            text=True, timeout=_PROBE_SECONDS, preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        raise CheckpointError(f"{path}: XGBoost took over {_PROBE_SECONDS}s to read it") from None
    if done.returncode != 0:
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        raise CheckpointError(f"{path}: XGBoost crashed reading it ({how}); a corrupt model?")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in report:
        raise CheckpointError(f"{path}: not a loadable XGBoost model ({report['error']})")
    _count(report["features"], path, "the feature count", MAX_FEATURES)
