"""Export a loaded model to an fp32 ONNX graph through an ordered chain of strategies.

Each strategy either does not apply (recorded as skipped, with the reason), fails
(recorded with its error), or produces a graph that must then pass ``onnx.checker``,
open in onnxruntime and return the model's outputs by name. The first that passes wins;
every attempt goes into the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from convert_model.core.errors import ExportError, summary
from convert_model.core.quiet import quiet
from converters import onnx_graph
from converters.export_strategy import STRATEGY_NAMES, ExportConfig, ExportStrategy
from converters.types import ExportAttempt, ExportedGraph, LoadedModel

__all__ = ["STRATEGY_NAMES", "ExportConfig", "export", "strategies"]

def strategies() -> tuple[ExportStrategy, ...]:
    """The chain, in the order it is tried."""
    from converters.export_catboost import CATBOOST
    from converters.export_dynamo import DYNAMO
    from converters.export_fasttext import FASTTEXT
    from converters.export_optimum import OPTIMUM
    from converters.export_source_onnx import SOURCE_ONNX
    from converters.export_tabular import ONNXMLTOOLS
    from converters.export_torchscript import TORCHSCRIPT

    return (SOURCE_ONNX, ONNXMLTOOLS, CATBOOST, FASTTEXT, OPTIMUM, DYNAMO, TORCHSCRIPT)


def export(
    loaded: LoadedModel,
    folder: Path,
    config: ExportConfig,
    log: Callable[[str], None] = lambda _: None,
) -> ExportedGraph:
    """Run the chain into ``folder/model.onnx``; raise ExportError listing every failure."""
    path = folder / "model.onnx"
    attempts: list[ExportAttempt] = []
    for strategy in strategies():
        if config.strategies is not None and strategy.name not in config.strategies:
            attempts.append(
                ExportAttempt(
                    strategy=strategy.name, success=False, skipped=True, error="not selected"
                )
            )
            continue
        reason = strategy.applies(loaded)
        if reason:
            attempts.append(
                ExportAttempt(strategy=strategy.name, success=False, skipped=True, error=reason)
            )
            continue
        log(f"exporting with {strategy.name}")
        _remove_graph(path)
        start = time.perf_counter()
        try:
            with quiet():
                warned = strategy.export(loaded, path, config) or ()
                external = _externalise_if_large(path, config.external_data_threshold)
                _check(path, loaded)
        except Exception as e:  # noqa: BLE001  a failed strategy hands over to the next
            attempts.append(
                ExportAttempt(
                    strategy=strategy.name,
                    success=False,
                    error=_summary(e),
                    seconds=time.perf_counter() - start,
                )
            )
            log(f"{strategy.name} failed: {_summary(e)}")
            continue
        attempts.append(ExportAttempt(strategy=strategy.name, success=True,
                                      seconds=time.perf_counter() - start, warnings=warned))
        for line in warned:
            log(f"{strategy.name} warned: {line}")
        inputs, outputs = onnx_graph.signature(path)
        return ExportedGraph(
            path=path,
            strategy=strategy.name,
            attempts=tuple(attempts),
            opset=onnx_graph.opset_of(path),
            inputs=inputs,
            outputs=outputs,
            external_data=external,
        )
    _remove_graph(path)
    tried = "; ".join(f"{a.strategy}: {a.error}" for a in attempts)
    raise ExportError(f"no export strategy succeeded ({tried})")


def _summary(e: BaseException, limit: int = 500) -> str:
    """One short line per failed strategy for the manifest, cut at a word, never mid-word."""
    line = summary(e)
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0] + " …"


def export_causes(attempts: tuple[ExportAttempt, ...]) -> list[str]:
    """What the export chain said: each failed strategy's line, the winner's warnings."""
    causes = [f"{a.strategy} failed: {a.error}" for a in attempts
              if not a.success and not a.skipped and a.error]
    causes += [f"{a.strategy} warned: {w}" for a in attempts if a.success for w in a.warnings]
    return causes


def _remove_graph(path: Path) -> None:
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()


def _externalise_if_large(path: Path, threshold: int) -> bool:
    """Move initializers to ``model.onnx.data`` when the graph is over ``threshold`` bytes."""
    import onnx

    data_files = [p for p in path.parent.glob(path.name + "*") if p != path]
    total = path.stat().st_size + sum(p.stat().st_size for p in data_files)
    if total <= threshold:
        if data_files:  # small enough: fold external data back into one file
            model = onnx.load(str(path))
            for p in data_files:
                p.unlink()
            onnx.save_model(model, str(path))
        return False
    model = onnx.load(str(path))
    for p in data_files:
        p.unlink()
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
        size_threshold=1024,
    )
    return True


def _check(path: Path, loaded: LoadedModel) -> None:
    """The graph passes onnx.checker, opens in onnxruntime and returns the model's outputs."""
    import onnx

    onnx.checker.check_model(str(path))
    sess = onnx_graph.session(path)
    got = onnx_graph.run(sess, loaded.examples[0])
    if list(got) != list(loaded.output_names):
        raise ValueError(
            f"graph outputs {list(got)}, the model returns {list(loaded.output_names)}"
        )
