"""Cheap heads trained on the CPU from an embedding store: linear probe, the seed study's probe, MLP, zero-shot.

All are scikit-learn-style estimators on numpy arrays (`fit` returns self, learned attributes end in `_`,
`predict_proba` returns probabilities); `heads.registry` lists them and `benchmark.pipelines.heads` wires them
to stores, tasks and prediction runs.
"""
