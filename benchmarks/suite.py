"""The benchmark suite's helpers: which reference models to run, and converting them once.

Environment:

- ``CONVERT_MODEL_BENCH_FULL=1`` also benchmarks the BERT-base sized ``readability`` model
  (slow: minutes to build and convert).
- ``CONVERT_MODEL_BENCH_MODELS=a,b`` benchmarks only these reference models.
- ``CONVERT_MODEL_BENCH_OUT=DIR`` converts into ``DIR/NAME`` (kept, e.g. for a CI artifact)
  and reuses a bundle already there instead of converting again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert_model.core.errors import ParityError, UsageError
from convert_model.core.names import BASELINE

SLOW_MODELS = ("readability",)


def selected_models() -> list[str]:
    """The reference models the suite benchmarks, per the environment."""
    import reference_models

    names = list(reference_models.names())
    chosen = os.environ.get("CONVERT_MODEL_BENCH_MODELS")
    if chosen:
        wanted = [n.strip() for n in chosen.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise UsageError(
                f"CONVERT_MODEL_BENCH_MODELS names unknown models {unknown}; known: {names}"
            )
        return wanted
    if os.environ.get("CONVERT_MODEL_BENCH_FULL") == "1":
        return names
    return [n for n in names if n not in SLOW_MODELS]


@dataclass(frozen=True, kw_only=True)
class Converted:
    """A converted reference model: its bundle and callables running one stored input."""

    name: str
    out: Path
    recommended: str
    runners: dict[str, Callable[[], object]]
    # Generative models: greedy generation of the first stored prompt by model.generate
    # ("original"), the bundle's loop over the fp32 graphs and over the recommended ones.
    generation: dict[str, Callable[[], object]] = field(default_factory=dict)


def generative_models() -> list[str]:
    """The selected reference models whose task generates (they also get generation timing)."""
    import reference_models
    from converters.export_generation import is_generative

    return [
        n for n in selected_models()
        if is_generative(reference_models.get(n).convert_options.get("task"))
    ]


def _load_original(name: str) -> Any:
    """The reference model loaded as the pipeline loads it (the 'original' of the bundle)."""
    from convert_model.pipeline import load_original

    return load_original(f"reference:{name}")


def _first_sample(out: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(out / "sample_inputs.npz", allow_pickle=False) as data:
        return {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("0/")}


def convert_reference(name: str, root: Path) -> Converted:
    """Convert ``reference:NAME`` into ``root/NAME`` (unless a bundle is there) and load it.

    The runners feed the bundle's first stored sample input to the original, the fp32
    export and the recommended variant, at the thread count the bundle was measured with.
    """
    from convert_model import convert
    from convert_model.bundle.manifest import read_manifest
    from convert_model.stages.fp32 import set_original_threads
    from converters.onnx_graph import runner as ort_runner

    out = root / name
    if not (out / "manifest.json").is_file():
        try:
            convert(f"reference:{name}", out=out, force=True)
        except ParityError as e:  # a failed gate still writes the bundle; the suite times it
            print(f"{name}: {e}")
    manifest = read_manifest(out)
    threads = int(manifest.measurement.get("threads") or 1)
    feed = _first_sample(out)
    loaded = _load_original(name)
    set_original_threads(loaded.framework, threads)
    runners: dict[str, Callable[[], object]] = {"original": lambda: loaded.run(feed)}
    for label, variant in ((BASELINE, BASELINE), ("recommended", manifest.recommended)):
        if variant is not None:
            run = ort_runner(out / manifest.variant(variant).file, threads)
            runners[label] = lambda run=run: run(feed)  # type: ignore[misc]
    return Converted(name=name, out=out, recommended=manifest.recommended or "", runners=runners,
                     generation=_generation_runners(out, manifest, loaded, threads))


def _generation_runners(out: Path, manifest: Any, loaded: Any,
                        threads: int) -> dict[str, Callable[[], object]]:
    import numpy as np

    from benchmarks.generators import bundle_generator, torch_generator
    from convert_model.bundle.generation_files import CHECK_FILE, FOLDER

    generation = manifest.generation
    if not generation:
        return {}
    with np.load(out / FOLDER / CHECK_FILE, allow_pickle=False) as data:
        prompt = {k: data[k][:1] for k in data.files if k != "greedy"}
    generate = torch_generator(loaded.hf_model, generation.split["kind"])
    runners: dict[str, Callable[[], object]] = {
        "original": lambda: generate(prompt, num_beams=1)
    }
    for label, name in ((BASELINE, BASELINE), ("recommended", generation.recommended)):
        if name is None:
            continue
        variant = next(v for v in generation.variants if v.name == name)
        run, _ = bundle_generator(out, variant.files, threads)
        runners[label] = lambda run=run: run(prompt, num_beams=1)  # type: ignore[misc]
    return runners
