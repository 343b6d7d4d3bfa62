"""Heads on synthetic embeddings: planted signal recovered, noise at chance, agreement with scikit-learn,
single- and multi-label paths, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from heads.common import macro_auc
from heads.linear import LinearProbe
from heads.mlp import MLPHead
from heads.seed_linear import SeedLinearProbe
from heads.synthetic import synthetic_embeddings
from heads.zeroshot import ZeroShotHead


def split(data):
    tr, va, te = data.indices("train"), data.indices("val"), data.indices("test")
    return (data.image[tr], data.labels[tr]), (data.image[va], data.labels[va]), (data.image[te], data.labels[te])


def zero_shot(data, n_classes):
    classes = [f"c{i}" for i in range(n_classes)]
    return ZeroShotHead(data.text, np.array(classes)[data.text_class], classes, logit_scale=10.0)


HEADS = {
    "linear": lambda: LinearProbe(Cs=(0.01, 1.0)),
    "mlp": lambda: MLPHead(hidden=64, max_epochs=8, batch_size=128),
    "seed-linear": lambda: SeedLinearProbe(hidden=64, max_epochs=8, batch_size=64, lr=3e-3),
}


@pytest.mark.parametrize("kind", ["multi", "single"])
@pytest.mark.parametrize("name", sorted(HEADS))
def test_trained_heads_recover_signal_and_sit_at_chance_on_noise(name, kind):
    n_classes = 5 if kind == "multi" else 4
    for signal, low, high in ((3.0, 0.8, 1.0), (0.0, 0.4, 0.6)):
        data = synthetic_embeddings(1500, 16, n_classes, kind=kind, signal=signal, min_prevalence=0.1, seed=1)
        train, val, test = split(data)
        head = HEADS[name]().fit(*train, *val)
        probabilities = head.predict_proba(test[0])
        assert probabilities.shape == (len(test[0]), n_classes)
        assert np.all((probabilities >= 0) & (probabilities <= 1))
        if kind == "single":
            np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        auc = macro_auc(test[1], probabilities)
        assert low < auc < high, f"{name} {kind} signal={signal}: macro AUC {auc:.3f}"


@pytest.mark.parametrize("kind", ["multi", "single"])
def test_zero_shot_recovers_signal_from_prompts(kind):
    n_classes = 5 if kind == "multi" else 4
    data = synthetic_embeddings(1500, 16, n_classes, kind=kind, signal=3.0, seed=2)
    _, val, test = split(data)
    head = zero_shot(data, n_classes).fit(*val)
    assert macro_auc(test[1], head.predict_proba(test[0])) > 0.8
    shuffled = zero_shot(data, n_classes)
    shuffled.text_embedding = np.random.default_rng(0).standard_normal(data.text.shape)
    assert macro_auc(test[1], shuffled.fit(*val).predict_proba(test[0])) < 0.7


@pytest.mark.parametrize("kind", ["multi", "single"])
def test_linear_probe_agrees_with_scikit_learn(kind):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    data = synthetic_embeddings(1200, 12, 4, kind=kind, signal=1.0, seed=3)
    train, val, test = split(data)
    ours = LinearProbe(Cs=(0.05,), standardize=False, tol=1e-7, max_iter=500).fit(*train, *val)
    reference = LogisticRegression(C=0.05, tol=1e-8, max_iter=2000)
    reference = OneVsRestClassifier(reference) if kind == "multi" else reference
    reference.fit(train[0].astype(np.float64), train[1])
    expected = reference.predict_proba(test[0].astype(np.float64))
    np.testing.assert_allclose(ours.predict_proba(test[0]), expected, atol=2e-3)
    assert abs(macro_auc(test[1], ours.predict_proba(test[0])) - macro_auc(test[1], expected)) < 1e-3


def test_linear_probe_picks_C_on_val_and_records_it():
    data = synthetic_embeddings(1500, 16, 4, kind="multi", signal=1.0, seed=4)
    train, val, _ = split(data)
    probe = LinearProbe(Cs=(1e-5, 1e-2, 1.0)).fit(*train, *val)
    assert set(probe.scores_) == {1e-5, 1e-2, 1.0}
    assert probe.C_ == min(probe.scores_, key=probe.scores_.get)
    assert probe.C_ != 1e-5  # so strong a penalty predicts the prior only, a worse val loss
    by_auc = LinearProbe(Cs=(1e-5, 1e-2, 1.0), scoring="auc").fit(*train, *val)
    assert by_auc.C_ == max(by_auc.scores_, key=by_auc.scores_.get)


@pytest.mark.parametrize("name", ["mlp", "seed-linear"])
def test_trained_heads_are_deterministic_for_a_seed(name):
    data = synthetic_embeddings(800, 16, 4, kind="single", signal=1.0, seed=5)
    train, val, test = split(data)
    make = HEADS[name]
    first = make().fit(*train, *val).predict_proba(test[0])
    again = make().fit(*train, *val).predict_proba(test[0])
    other = make()
    other.random_state = 1
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other.fit(*train, *val).predict_proba(test[0]))


def test_mlp_stops_early_on_val_loss_and_keeps_the_best_epoch():
    data = synthetic_embeddings(800, 16, 4, kind="multi", signal=0.0, seed=6)
    train, val, _ = split(data)
    head = MLPHead(hidden=64, max_epochs=40, patience=2, lr=1e-2).fit(*train, *val)
    assert head.epochs_run_ < 40
    assert head.epochs_run_ == head.best_epoch_ + 2
    assert head.val_loss_[head.best_epoch_ - 1] == min(head.val_loss_)


def test_zero_shot_pairs_and_fitted_temperature():
    data = synthetic_embeddings(1000, 16, 3, kind="multi", signal=3.0, min_prevalence=0.1, seed=7)
    _, val, test = split(data)
    classes = ["a", "b", "c"]
    names = np.array(classes)[data.text_class]
    polarity = np.array(["pos"] * len(names) + ["negative"] * len(names))
    pairs = ZeroShotHead(
        np.concatenate([data.text, -data.text]), np.concatenate([names, names]), classes, polarity=polarity,
        kind="multi", logit_scale=1.0,
    ).fit()
    assert pairs.uses_pairs_ and pairs.center_ is None
    assert macro_auc(test[1], pairs.predict_proba(test[0])) > 0.8
    fitted = ZeroShotHead(data.text, names, classes, temperature="fit").fit(*val)
    assert fitted.temperature_ != 1.0
    plain = ZeroShotHead(data.text, names, classes).fit(*val)
    loss = lambda p, y: -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss(fitted.predict_proba(val[0]), val[1]) < loss(plain.predict_proba(val[0]), val[1])


def test_zero_shot_refuses_a_class_without_prompts():
    with pytest.raises(ValueError, match=r"no positive prompt for class\(es\) \['c'\]"):
        ZeroShotHead(np.eye(2, 4), ["a", "b"], ["a", "b", "c"], kind="single").fit()


def test_zero_shot_custom_similarity_gets_the_rows_of_each_chunk():
    data = synthetic_embeddings(600, 16, 3, kind="multi", signal=3.0, min_prevalence=0.2, seed=8)
    classes = ["a", "b", "c"]
    names = np.array(classes)[data.text_class]
    image = data.image.astype(np.float32)
    table = (image / np.linalg.norm(image, axis=1, keepdims=True)) @ (
        data.text / np.linalg.norm(data.text, axis=1, keepdims=True)
    ).T
    seen = []

    def similarity(image_chunk, rows):
        seen.append(len(rows))
        return table[rows]

    noise = np.random.default_rng(0).standard_normal(image.shape).astype(np.float32)
    _, val, test = split(data)
    val_rows, test_rows = data.indices("val"), data.indices("test")
    head = ZeroShotHead(data.text, names, classes, ensemble="max", similarity=similarity, chunk_rows=7)
    head.fit(noise[val_rows], val[1], rows=val_rows)
    probabilities = head.predict_proba(noise[test_rows], rows=test_rows)
    assert max(seen) == 7
    assert macro_auc(test[1], probabilities) > 0.8
    plain = ZeroShotHead(data.text, names, classes, ensemble="max").fit(*val)
    np.testing.assert_allclose(probabilities, plain.predict_proba(test[0]), atol=1e-5)
