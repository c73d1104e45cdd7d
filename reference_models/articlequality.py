"""articlequality: a LightGBM model of an article's quality class from 8 page-structure counts.

Synthetic task: each article has a hidden quality; its length, references, wikilinks,
headings, images, templates and categories grow with it (log-normally, with noise), and
better articles more often have an infobox. The quality class (Stub, Start, C, B, GA, FA)
is the hidden quality cut at fixed points, so the classes are ordered and neighbours are
the ones confused. Handed over as the LightGBM text model file (``Booster.save_model``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.registry import Progress, ReferenceModel, register

# lightgbm is imported inside `build`: listing the registry stays instant.

SEED = 20240509
TRAIN_ARTICLES = 12_000
EVAL_ARTICLES = 400
TREES = 60  # boosting rounds; LightGBM grows one tree per class in each
NUM_LEAVES = 15
LEARNING_RATE = 0.1

MODEL_FILE = "articlequality.txt"

CLASSES = ("Stub", "Start", "C", "B", "GA", "FA")
# Standard normal quantiles at 22, 44, 62, 78 and 90 %: fewer articles in each better class.
CUTS = (-0.772, -0.151, 0.305, 0.772, 1.282)
FEATURES = (
    "characters",
    "references",
    "wikilinks",
    "headings",
    "images",
    "templates",
    "categories",
    "infobox",
)
# Per count: log of its mean for an average article, and how fast it grows with quality.
_GROWTH = {
    "characters": (7.6, 1.25),
    "references": (0.3, 1.4),
    "wikilinks": (2.8, 0.9),
    "headings": (0.5, 0.8),
    "images": (-0.6, 0.9),
    "templates": (1.0, 0.9),
    "categories": (1.2, 0.4),
}
NOISE = 0.4  # per-count spread (log scale) around what the quality predicts


def articles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` articles: float32 counts (n, 8) in FEATURES order, and their class (0 = Stub)."""
    quality = rng.standard_normal(n)
    columns: dict[str, np.ndarray] = {}
    for name, (base, growth) in _GROWTH.items():
        mean = np.exp(base + growth * quality + NOISE * rng.standard_normal(n))
        columns[name] = np.round(mean) if name == "characters" else rng.poisson(mean)
    columns["infobox"] = rng.random(n) < 1.0 / (1.0 + np.exp(-(0.2 + 1.2 * quality)))
    x = np.stack([np.asarray(columns[name], dtype=np.float64) for name in FEATURES], axis=1)
    return x.astype(np.float32), np.digitize(quality, CUTS).astype(np.int64)


def build(folder: Path, progress: Progress) -> None:
    """Write the LightGBM text model, eval set and samples into `folder`."""
    import lightgbm as lgb

    rng = np.random.default_rng(SEED)
    progress("generating articles")
    train_x, train_y = articles(rng, TRAIN_ARTICLES)
    eval_x, eval_y = articles(rng, EVAL_ARTICLES)
    progress(f"training {TREES} rounds x {len(CLASSES)} classes on {TRAIN_ARTICLES} articles")
    model = lgb.LGBMClassifier(
        n_estimators=TREES,
        num_leaves=NUM_LEAVES,
        learning_rate=LEARNING_RATE,
        n_jobs=1,  # with deterministic and row-wise histograms: the same trees everywhere
        deterministic=True,
        force_row_wise=True,
        random_state=SEED,
        verbose=-1,
    ).fit(train_x, train_y, feature_name=list(FEATURES))
    model.booster_.save_model(str(folder / MODEL_FILE))
    predicted = np.asarray(model.booster_.predict(eval_x)).argmax(axis=1)
    accuracy = float(np.mean(predicted == eval_y))
    progress(f"eval accuracy {accuracy:.3f} on {EVAL_ARTICLES} articles")
    write_eval(folder, {"input": eval_x}, eval_y)
    write_samples(
        folder,
        [
            {
                **{
                    name: int(value)
                    for name, value in zip(FEATURES, eval_x[row].tolist(), strict=True)
                },
                "class": CLASSES[int(eval_y[row])],
            }
            for row in range(5)
        ],
    )


REFERENCE = register(
    ReferenceModel(
        name="articlequality",
        summary=(
            f"LightGBM multi-class model ({TREES} rounds x {len(CLASSES)} classes) of an "
            f"article's quality class ({'/'.join(CLASSES)}) from {len(FEATURES)} "
            "page-structure counts"
        ),
        form="lightgbm",
        version="1",
        checkpoint=MODEL_FILE,
        convert_options={},
        metric="accuracy",
        metric_output="probabilities",
        chance=0.17,  # a uniform guess over six classes
        builder=build,
    )
)
