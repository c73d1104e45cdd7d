"""Reference models: small, deterministic researcher-style models in their real handoff forms.

Each model is built from code on demand (nothing is downloaded), trained for
seconds on synthetic data, and cached under `cache_root() / "reference"`.
`build(name)` returns where its checkpoint, converter options and labelled
evaluation set are. Importing this package imports neither torch nor
transformers: the builders do, when they run.
"""

from reference_models import (
    article_descriptions,
    articlequality,
    logo_detection,
    outlink_topic,
    outlink_topic_fasttext,
    readability,
    revertrisk_catboost,
    revertrisk_language_agnostic,
    revertrisk_multilingual,
    sentence_outliers,
)
from reference_models.cache import build, cache_root
from reference_models.registry import (
    FORMS,
    BuiltReference,
    Progress,
    ReferenceModel,
    ReferenceModelError,
    Registry,
    get,
    names,
    register,
)

# Importing a model module registers it; naming them here keeps that import deliberate.
MODEL_MODULES = (
    article_descriptions,
    articlequality,
    logo_detection,
    outlink_topic,
    outlink_topic_fasttext,
    readability,
    revertrisk_catboost,
    revertrisk_language_agnostic,
    revertrisk_multilingual,
    sentence_outliers,
)

__all__ = [
    "FORMS",
    "MODEL_MODULES",
    "BuiltReference",
    "Progress",
    "ReferenceModel",
    "ReferenceModelError",
    "Registry",
    "build",
    "cache_root",
    "get",
    "names",
    "register",
]
