"""revertrisk-catboost: a CatBoost classifier of edit features giving P(revert).

Stands for the classifier stage of multilingual revert risk, which Lift Wing serves as a
CatBoost ``.cbm`` file. It learns the same synthetic task as revertrisk-language-agnostic
(30 edit features, NaN where a feature does not exist), from its generator, and is handed
over as CatBoost's binary model file (``save_model``), with its feature names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reference_models.registry import Progress, ReferenceModel, register
from reference_models.revertrisk_language_agnostic import (
    FEATURES,
    labelled_edits,
    write_edit_eval,
)

# catboost is imported inside `build`: listing the registry stays instant.

SEED = 20240511
TRAIN_EDITS = 10_000
EVAL_EDITS = 400
TREES = 150
DEPTH = 6
LEARNING_RATE = 0.1

MODEL_FILE = "revertrisk_catboost.cbm"


def build(folder: Path, progress: Progress) -> None:
    """Write the CatBoost model file, eval set and samples into `folder`."""
    import catboost

    progress("generating edits")
    train_x, train_y, eval_x, eval_y = labelled_edits(SEED, TRAIN_EDITS, EVAL_EDITS)
    progress(f"training {TREES} trees on {TRAIN_EDITS} edits ({train_y.mean():.0%} reverted)")
    model = catboost.CatBoostClassifier(
        iterations=TREES,
        depth=DEPTH,
        learning_rate=LEARNING_RATE,
        thread_count=1,  # one thread: the same trees on every machine
        random_seed=SEED,
        allow_writing_files=False,
        verbose=0,
    ).fit(catboost.Pool(train_x, train_y, feature_names=list(FEATURES)))
    # The file records when and under which random id it was trained; fixed, two builds match.
    metadata = model.get_metadata()
    metadata["train_finish_time"] = "2024-05-11T00:00:00Z"
    metadata["model_guid"] = "revertrisk-catboost-1"
    model.save_model(str(folder / MODEL_FILE), format="cbm")
    accuracy = float(np.mean(model.predict(eval_x).astype(np.int64) == eval_y))
    progress(f"eval accuracy {accuracy:.3f} on {EVAL_EDITS} edits")
    write_edit_eval(folder, eval_x, eval_y)


REFERENCE = register(
    ReferenceModel(
        name="revertrisk-catboost",
        summary=(
            f"CatBoost classifier ({TREES} oblivious trees, depth {DEPTH}) giving P(revert) "
            f"from {len(FEATURES)} edit features with missing values"
        ),
        form="catboost",
        version="1",
        checkpoint=MODEL_FILE,
        convert_options={},
        metric="accuracy",
        metric_output="probabilities",
        chance=0.5,
        builder=build,
    )
)
