"""The pipeline's stages: each a function from a ConversionState to the next one.

Orchestration only: loading and export live in ``converters/``, passes in ``optimizers/``,
measuring in ``benchmarks/``, the decision in ``optimizers/select.py``, the bundle in
``convert_model/bundle/``.
"""
