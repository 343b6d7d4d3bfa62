"""Every registered head keeps the scikit-learn estimator contract.

Trained heads run scikit-learn's own common checks (`parametrize_with_checks`: clone, unfitted errors,
idempotent fit, pickling, input validation, n_features_in_, ...). The zero-shot head's feature width is fixed by
its prompt embeddings, so the common checks (which draw inputs of any width) do not apply as such; the same
contract is checked here on inputs of the right width.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from heads.registry import HEADS

SMALL = {"linear": {"Cs": (0.1, 1.0)}, "mlp": {"max_epochs": 2, "hidden": 8},
         "seed-linear": {"max_epochs": 2, "hidden": 8}}
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
