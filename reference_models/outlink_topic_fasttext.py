"""outlink-topic-fasttext: the outlink topic model as Lift Wing serves it, a fastText ``.bin``.

The same synthetic task as outlink-topic (64 topics, each with its pool of Wikidata-like
items; an article links mostly to items of its one to three topics), from its generator,
but handed over as a supervised fastText model trained with fasttext on the articles'
outlinks written as text (``__label__Culture.Media Q42 Q1234 ...``): multi-label, one-vs-all
loss, character n-grams and word bigrams hashed into buckets. The eval set is raw text, some
of it with items never seen in training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from reference_models.handoff import write_eval, write_samples
from reference_models.outlink_topic import TOPICS, _World
from reference_models.registry import Progress, ReferenceModel, register

# fasttext is imported inside `build`: listing the registry stays instant.

SEED = 20240512
TRAIN_ARTICLES = 12_000
EVAL_ARTICLES = 400
UNSEEN_EVERY = 5  # every fifth eval article also links to an item no article links to
DIM = 32
EPOCHS = 25
LEARNING_RATE = 1.0
BUCKET = 50_000
MINN, MAXN = 3, 5
WORD_NGRAMS = 2
LABEL = "__label__"

MODEL_FILE = "outlink_topic.bin"
_TRAIN_FILE = ".train.txt"


NAN_RETRIES = 20
_TRAIN_SCRIPT = """
import json, sys
import fasttext
params = json.loads(sys.argv[3])
for attempt in range(int(sys.argv[4])):
    try:
        model = fasttext.train_supervised(sys.argv[1], **params)
        break
    except RuntimeError as e:
        if "NaN" not in str(e):
            raise
else:
    sys.exit("fasttext stopped with 'Encountered NaN' on every attempt")
model.save_model(sys.argv[2])
"""


def train_supervised(path: Path, **params: object) -> Any:
    """``fasttext.train_supervised`` on the lines in ``path``, in a fresh child process.

    fasttext 0.9.3's training depends on the state of the process it runs in: beside
    torch or onnxruntime it gives other weights from the same file and seed, and in some
    settings stops most runs with "Encountered NaN". In a child that imports nothing else
    it gives the same model every time; a run that stops on NaN is tried again.
    """
    import fasttext

    target = path.with_suffix(".bin")
    done = subprocess.run(
        [sys.executable, "-I", "-c", _TRAIN_SCRIPT, str(path), str(target), json.dumps(params),
         str(NAN_RETRIES)],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fastText training failed: {done.stderr.strip()[-500:]}")
    model = fasttext.load_model(str(target))
    target.unlink()
    return model


def _lines(labels: np.ndarray, qids: list[list[str]]) -> list[str]:
    return [
        " ".join([*(f"{LABEL}{TOPICS[t]}" for t in np.flatnonzero(row)), *items])
        for row, items in zip(labels, qids, strict=True)
    ]


def build(folder: Path, progress: Progress) -> None:
    """Train with fasttext; write the ``.bin``, the eval texts and samples into `folder`."""
    rng = np.random.default_rng(SEED)
    progress("generating articles")
    world = _World(rng)
    _, train_labels, train_qids = world.articles(rng, TRAIN_ARTICLES)
    _, eval_labels, eval_qids = world.articles(rng, EVAL_ARTICLES)
    for row in range(0, EVAL_ARTICLES, UNSEEN_EVERY):
        eval_qids[row].append(f"Q{900_000_000 + row}")
    train_file = folder / _TRAIN_FILE
    train_file.write_text("\n".join(_lines(train_labels, train_qids)) + "\n", encoding="utf-8")
    progress(f"training fastText (one-vs-all, dim {DIM}, {EPOCHS} epochs) on "
             f"{TRAIN_ARTICLES} articles")
    model = train_supervised(
        train_file, loss="ova", dim=DIM, epoch=EPOCHS, lr=LEARNING_RATE, minn=MINN,
        maxn=MAXN, wordNgrams=WORD_NGRAMS, bucket=BUCKET, thread=1, seed=SEED % 2**31,
        label=LABEL, verbose=0,
    )
    train_file.unlink()
    model.save_model(str(folder / MODEL_FILE))
    # Labels in the model's output order (fastText orders them by frequency).
    order = [TOPICS.index(name[len(LABEL):]) for name in model.labels]
    labels = eval_labels[:, order]
    texts = [" ".join(items) for items in eval_qids]
    predicted, probabilities = model.predict(texts, k=-1, threshold=0.5)
    hits = sum(len(set(p) & {model.labels[i] for i in np.flatnonzero(row)})
               for p, row in zip(predicted, labels, strict=True))
    total = sum(len(p) for p in predicted) + int(labels.sum())
    progress(f"eval micro-F1 {2 * hits / total:.3f} on {EVAL_ARTICLES} articles")
    write_eval(folder, {"text": np.asarray(texts)}, labels)
    write_samples(
        folder,
        [{"text": texts[row], "topics": [TOPICS[t] for t in np.flatnonzero(eval_labels[row])]}
         for row in range(5)],
    )


REFERENCE = register(
    ReferenceModel(
        name="outlink-topic-fasttext",
        summary=(
            f"fastText supervised multi-label topic model (one-vs-all, dim {DIM}, char "
            f"{MINN}-{MAXN}-grams, word bigrams) over an article's outlinks as text"
        ),
        form="fasttext",
        version="1",
        checkpoint=MODEL_FILE,
        convert_options={},
        metric="micro_f1_probabilities",
        metric_output="probabilities",
        chance=0.06,  # predicting every topic, as for outlink-topic
        builder=build,
    )
)
