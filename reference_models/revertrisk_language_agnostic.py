"""revertrisk-language-agnostic: an XGBoost classifier of edit features giving P(revert).

Synthetic task: an edit is described by 30 numbers about its user, its page and what it
changed (no text, so the model works in every language). Features are missing (NaN) where
they really are: an anonymous user has no edit count, account age, groups or revert history;
a page with fewer than 30 watchers has its count hidden; an edit that adds no characters has
no share of upper-case letters. Whether the edit is reverted is drawn from a noisy rule a
patroller would recognise: anonymous and new users, bad words, shouting, blanking and
removed references raise the risk; experience, an edit summary and added references lower
it. Handed over as the Booster's JSON file (``save_model``), with its feature names.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.registry import Progress, ReferenceModel, register

# xgboost is imported inside `build`: listing the registry stays instant.

SEED = 20240508
TRAIN_EDITS = 20_000
EVAL_EDITS = 400
TREES = 100
MAX_DEPTH = 6
LEARNING_RATE = 0.1
HIDDEN_WATCHERS = 30  # MediaWiki shows no watcher count below this
RISK_SCALE = 1.6  # sharpens the rule: most edits are clearly good or clearly bad

MODEL_FILE = "revertrisk_language_agnostic.json"

FEATURES = (
    "user_is_anonymous",
    "user_is_bot",
    "user_edit_count",
    "user_age_days",
    "user_groups_count",
    "user_prior_reverts",
    "page_age_days",
    "page_watchers",
    "page_length_bytes",
    "page_recent_edits",
    "page_is_protected",
    "bytes_delta",
    "chars_added",
    "chars_removed",
    "refs_added",
    "refs_removed",
    "links_added",
    "links_removed",
    "images_added",
    "images_removed",
    "templates_added",
    "templates_removed",
    "categories_changed",
    "headings_changed",
    "badwords_added",
    "uppercase_ratio_added",
    "comment_length",
    "comment_has_revert_word",
    "hour_of_day",
    "is_mobile_edit",
)
_COLUMN = {name: index for index, name in enumerate(FEATURES)}


def _lognormal_count(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    return np.floor(np.exp(rng.normal(mean, sigma, n)))


def edits(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` edits as a float32 matrix (n, len(FEATURES)), NaN where a feature does not exist."""
    anonymous = rng.random(n) < 0.3
    registered = ~anonymous
    columns: dict[str, np.ndarray] = {
        "user_is_anonymous": anonymous.astype(float),
        "user_is_bot": (registered & (rng.random(n) < 0.02)).astype(float),
        "user_edit_count": _lognormal_count(rng, 4.0, 2.2, n),
        "user_age_days": _lognormal_count(rng, 5.0, 1.8, n),
        "page_age_days": _lognormal_count(rng, 7.0, 1.2, n),
        "page_watchers": _lognormal_count(rng, 3.5, 1.3, n),
        "page_length_bytes": _lognormal_count(rng, 9.0, 1.0, n),
        "page_recent_edits": rng.poisson(np.exp(rng.normal(0.5, 1.0, n))).astype(float),
        "page_is_protected": (rng.random(n) < 0.05).astype(float),
        "chars_added": _lognormal_count(rng, 4.0, 1.8, n) * (rng.random(n) < 0.85),
        "chars_removed": _lognormal_count(rng, 3.0, 2.0, n) * (rng.random(n) < 0.5),
        "refs_added": rng.poisson(0.3, n).astype(float),
        "refs_removed": rng.poisson(0.15, n).astype(float),
        "links_added": rng.poisson(0.8, n).astype(float),
        "links_removed": rng.poisson(0.3, n).astype(float),
        "images_added": rng.poisson(0.05, n).astype(float),
        "images_removed": rng.poisson(0.04, n).astype(float),
        "templates_added": rng.poisson(0.2, n).astype(float),
        "templates_removed": rng.poisson(0.1, n).astype(float),
        "categories_changed": rng.poisson(0.1, n).astype(float),
        "headings_changed": rng.poisson(0.1, n).astype(float),
        "badwords_added": rng.poisson(0.25, n).astype(float),
        "uppercase_ratio_added": rng.beta(1.0, 6.0, n),
        "comment_length": rng.poisson(35, n) * (rng.random(n) < 0.7).astype(float),
        "comment_has_revert_word": (rng.random(n) < 0.05).astype(float),
        "hour_of_day": rng.integers(0, 24, n).astype(float),
        "is_mobile_edit": (rng.random(n) < np.where(anonymous, 0.45, 0.2)).astype(float),
    }
    edit_count = columns["user_edit_count"]
    columns["user_groups_count"] = rng.poisson(0.2 + 1.5 * (edit_count > 1000)).astype(float)
    columns["user_prior_reverts"] = rng.poisson(0.3 + 0.05 * np.sqrt(edit_count)).astype(float)
    shouting = rng.random(n) < 0.08  # a share of edits typed in capitals
    columns["uppercase_ratio_added"] = np.where(
        shouting, rng.uniform(0.6, 1.0, n), columns["uppercase_ratio_added"]
    )
    columns["bytes_delta"] = columns["chars_added"] - columns["chars_removed"]
    # What does not exist is missing, not zero.
    for name in ("user_edit_count", "user_age_days", "user_groups_count", "user_prior_reverts"):
        columns[name] = np.where(anonymous, np.nan, columns[name])
    watchers = columns["page_watchers"]
    columns["page_watchers"] = np.where(watchers < HIDDEN_WATCHERS, np.nan, watchers)
    columns["uppercase_ratio_added"] = np.where(
        columns["chars_added"] == 0, np.nan, columns["uppercase_ratio_added"]
    )
    return np.stack([columns[name] for name in FEATURES], axis=1).astype(np.float32)


def revert_risk(x: np.ndarray) -> np.ndarray:
    """The rule's log-odds of a revert, before centring (NaN features count as zero)."""
    c = {name: np.nan_to_num(x[:, index].astype(np.float64)) for name, index in _COLUMN.items()}
    night = (c["hour_of_day"] < 6).astype(float)
    return (
        1.5 * c["user_is_anonymous"]
        - 0.45 * np.log1p(c["user_edit_count"])
        - 0.2 * np.log1p(c["user_age_days"])
        + 0.6 * np.minimum(c["user_prior_reverts"], 4)
        - 2.5 * c["user_is_bot"]
        - 0.3 * np.minimum(c["user_groups_count"], 3)
        + 1.3 * np.minimum(c["badwords_added"], 3)
        + 3.0 * (c["uppercase_ratio_added"] > 0.5)
        + 2.0 * (c["bytes_delta"] < -1000)
        + 0.8 * np.minimum(c["refs_removed"], 3)
        - 0.5 * np.minimum(c["refs_added"], 3)
        + 0.3 * np.minimum(c["links_removed"], 4)
        + 1.0 * np.minimum(c["images_removed"], 2)
        - 0.8 * (c["comment_length"] > 0)
        - 0.8 * c["comment_has_revert_word"]
        + 0.5 * c["is_mobile_edit"]
        + 0.4 * night
        - 0.8 * c["page_is_protected"]
        + 0.15 * np.log1p(c["page_watchers"])
    )


def label(rng: np.random.Generator, risk: np.ndarray, centre: float) -> np.ndarray:
    """Reverted (1) or kept (0), drawn with probability sigmoid(RISK_SCALE * (risk - centre))."""
    probability = 1.0 / (1.0 + np.exp(-RISK_SCALE * (risk - centre)))
    return (rng.random(len(risk)) < probability).astype(np.int64)


def labelled_edits(
    seed: int, train: int, evaluate: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and eval edits with their labels: (train x, train y, eval x, eval y)."""
    rng = np.random.default_rng(seed)
    train_x, eval_x = edits(rng, train), edits(rng, evaluate)
    train_risk = revert_risk(train_x)
    centre = float(np.median(train_risk))  # half of the edits are reverted, as in the eval sets
    train_y, eval_y = label(rng, train_risk, centre), label(rng, revert_risk(eval_x), centre)
    return train_x, train_y, eval_x, eval_y


def write_edit_eval(folder: Path, eval_x: np.ndarray, eval_y: np.ndarray) -> None:
    """Write the eval set and five samples (missing features as null) into `folder`."""
    write_eval(folder, {"input": eval_x}, eval_y)
    write_samples(
        folder,
        [
            {
                **{
                    name: None if math.isnan(value) else value
                    for name, value in zip(FEATURES, eval_x[row].tolist(), strict=True)
                },
                "revert": bool(eval_y[row]),
            }
            for row in range(5)
        ],
    )


def build(folder: Path, progress: Progress) -> None:
    """Write the booster's JSON file, eval set and samples into `folder`."""
    import xgboost as xgb

    progress("generating edits")
    train_x, train_y, eval_x, eval_y = labelled_edits(SEED, TRAIN_EDITS, EVAL_EDITS)
    progress(f"training {TREES} trees on {TRAIN_EDITS} edits ({train_y.mean():.0%} reverted)")
    model = xgb.XGBClassifier(
        n_estimators=TREES,
        max_depth=MAX_DEPTH,
        learning_rate=LEARNING_RATE,
        tree_method="hist",
        n_jobs=1,  # one thread: the same trees on every machine
        random_state=SEED,
    ).fit(train_x, train_y)
    booster = model.get_booster()
    booster.feature_names = list(FEATURES)
    booster.save_model(str(folder / MODEL_FILE))
    accuracy = float(np.mean(model.predict(eval_x) == eval_y))
    progress(f"eval accuracy {accuracy:.3f} on {EVAL_EDITS} edits")
    write_edit_eval(folder, eval_x, eval_y)


REFERENCE = register(
    ReferenceModel(
        name="revertrisk-language-agnostic",
        summary=(
            f"XGBoost classifier ({TREES} trees, depth {MAX_DEPTH}) giving P(revert) from "
            f"{len(FEATURES)} edit features with missing values"
        ),
        form="xgboost",
        version="1",
        checkpoint=MODEL_FILE,
        convert_options={},
        metric="accuracy",
        metric_output="probabilities",
        chance=0.5,
        builder=build,
    )
)
