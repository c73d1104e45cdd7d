"""Convert and re-verify a fleet of models on Ray (``convert-model fleet``).

``spec`` reads FLEET.yaml, ``runner`` runs one Ray task per model (``task``) with honest
timing (``slot``; the design is in ``runner``'s docstring), ``data`` evaluates large eval
sets with Ray Data, ``verify`` re-checks a root of bundles, ``report`` writes
fleet.{json,md,html}.
"""
