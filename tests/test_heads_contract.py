"""Every registered head keeps the scikit-learn estimator contract.

Trained heads run scikit-learn's own common checks (`parametrize_with_checks`: clone, unfitted errors,
idempotent fit, pickling, input validation, n_features_in_, ...); the mitigation heads among them take the
protected groups as optional `fit` arguments, so the checks see them without groups (one group). The zero-shot
head's feature width is fixed by its prompt embeddings, so the common checks (which draw inputs of any width) do
not apply as such; the same contract is checked here on inputs of the right width. The "constrained" heads
(fairlearn's randomised, binary-per-class classifiers) cannot take the common checks' multi-class data either;
their contract is checked here on multi-label data with groups.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from heads.registry import HEADS

_EPOCHS = {"max_epochs": 2, "hidden": 8}
SMALL = {"linear": {"Cs": (0.1, 1.0)}, "mlp": _EPOCHS, "seed-linear": _EPOCHS,
         "linear-reweight": {"Cs": (0.1, 1.0)}, "linear-resample": {"Cs": (0.1, 1.0)},
         "linear-groupdro": {**_EPOCHS, "step_sizes": (0.1,)}, "mlp-reweight": _EPOCHS, "mlp-resample": _EPOCHS,
         "mlp-groupdro": {**_EPOCHS, "step_sizes": (0.01, 1.0)}}
"""Settings that keep each trained head's checks fast (the contract does not depend on them)."""


def trained_heads():
    assert set(SMALL) == {name for name, spec in HEADS.items() if spec.kind == "trained"}, "a head lacks SMALL settings"
    return [HEADS[name].create(**SMALL[name]) for name in SMALL]


@parametrize_with_checks(trained_heads())
def test_trained_heads_pass_scikit_learns_checks(estimator, check):
    check(estimator)


def zeroshot(dim=6, classes=("a", "b", "c"), kind="single"):
    rng = np.random.default_rng(0)
    names = np.repeat(np.array(classes), 2)
    return HEADS["zeroshot"].create(text_embedding=rng.standard_normal((len(names), dim)).astype(np.float32),
                                    class_name=names, classes=list(classes), kind=kind)


def test_zeroshot_keeps_the_estimator_contract():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((30, 6)).astype(np.float32), rng.integers(0, 3, 30)
    head = zeroshot()
    with pytest.raises(NotFittedError):
        head.predict_proba(X)
    fitted = clone(head).fit(X, y)
    assert fitted.n_features_in_ == 6
    first = fitted.predict_proba(X)
    np.testing.assert_allclose(clone(head).fit(X, y).predict_proba(X), first)  # idempotent
    np.testing.assert_allclose(fitted.fit(X, y).predict_proba(X), first)  # refit
    np.testing.assert_allclose(pickle.loads(pickle.dumps(fitted)).predict_proba(X), first)
    order = rng.permutation(30)
    np.testing.assert_allclose(fitted.predict_proba(X[order]), first[order], atol=1e-6)
    np.testing.assert_allclose(first.sum(axis=1), 1.0)


@pytest.mark.parametrize("bad, message", [
    (np.full((4, 6), np.nan, dtype=np.float32), "NaN"),
    (np.zeros((4, 5), dtype=np.float32), "5 features, but the prompt embeddings have 6"),
    (np.zeros(6, dtype=np.float32), "2D array"),
])
def test_zeroshot_refuses_bad_features_in_words(bad, message):
    head = zeroshot(kind="multi").fit(np.random.default_rng(2).standard_normal((8, 6)).astype(np.float32))
    with pytest.raises(ValueError, match=message):
        head.predict_proba(bad)


CONSTRAINED_SMALL = {"thresholds-eqodds": {"grid_size": 100}, "thresholds-eopp": {"grid_size": 100},
                     "expgrad-eqodds": {"max_iter": 5, "Cs": (0.1,)}, "expgrad-tpr": {"max_iter": 5, "Cs": (0.1,)}}


def constrained_data(n=240, dim=5, classes=2, seed=3):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 2, n)
    y = (rng.random((n, classes)) < 0.4).astype(np.int8)
    X = (rng.standard_normal((n, dim)) + y[:, :1] + 0.5 * groups[:, None]).astype(np.float32)
    return X, y, groups


@pytest.mark.parametrize("name", sorted(CONSTRAINED_SMALL))
def test_constrained_heads_keep_the_estimator_contract(name):
    assert set(CONSTRAINED_SMALL) == {n for n, spec in HEADS.items() if spec.kind == "constrained"}
    X, y, groups = constrained_data()
    train, val = slice(0, 160), slice(160, None)
    head = HEADS[name].create(**CONSTRAINED_SMALL[name])
    with pytest.raises(NotFittedError):
        head.predict_proba(X, groups=groups)
    fit = dict(groups=groups[train], groups_val=groups[val])
    fitted = clone(head).fit(X[train], y[train], X[val], y[val], **fit)
    assert fitted.n_features_in_ == X.shape[1] and not hasattr(head, "n_features_in_")
    first = fitted.predict_proba(X, groups=groups)
    assert first.shape == y.shape and set(np.unique(first)) <= {0.0, 1.0}  # decisions, not probabilities
    np.testing.assert_array_equal(fitted.predict_proba(X, groups=groups), first)  # seeded draws
    np.testing.assert_array_equal(clone(head).fit(X[train], y[train], X[val], y[val], **fit).predict_proba(X, groups=groups), first)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X, groups=groups), first)
    np.testing.assert_array_equal(fitted.predict(X, groups=groups), first.astype(np.int8))
    assert fitted.chosen_on_val()["decisions"] is True
    with pytest.raises(ValueError, match="features"):
        fitted.predict_proba(X[:, :3], groups=groups)


@pytest.mark.parametrize("name", sorted(CONSTRAINED_SMALL))
def test_constrained_heads_refuse_single_label_tasks_in_words(name):
    X, y, groups = constrained_data()
    with pytest.raises(ValueError, match="binary"):
        HEADS[name].create(**CONSTRAINED_SMALL[name]).fit(X, y[:, 0] + y[:, 1], groups=groups)


def test_thresholds_refuse_a_group_they_were_not_fitted_with():
    X, y, groups = constrained_data()
    head = HEADS["thresholds-eqodds"].create(grid_size=100).fit(X[:160], y[:160], X[160:], y[160:],
                                                                 groups=groups[:160], groups_val=groups[160:])
    with pytest.raises(ValueError, match="were not among the groups"):
        head.predict_proba(X, groups=np.full(len(X), 5))
