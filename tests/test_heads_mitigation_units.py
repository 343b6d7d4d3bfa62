"""The pieces of the mitigation heads: group-balanced weights, row weights in the probe, GroupDRO's search."""

from __future__ import annotations

import numpy as np
import pytest

from heads.linear import LinearProbe
from heads.mitigation import GroupDROLinear, ResampledLinear, balanced_weights
from heads.synthetic import synthetic_embeddings


def test_balanced_weights_give_every_group_the_same_total_and_average_one():
    groups = np.r_[np.zeros(70, dtype=np.int64), np.ones(20, dtype=np.int64), np.full(10, 3)]
    weights = balanced_weights(groups, len(groups))
    totals = [weights[groups == g].sum() for g in (0, 1, 3)]
    np.testing.assert_allclose(totals, [100 / 3] * 3)
    assert weights.mean() == pytest.approx(1.0) and balanced_weights(None, 5) is None


@pytest.fixture(scope="module")
def data():
    return synthetic_embeddings(3000, 16, 3, min_prevalence=0.2, seed=4)


def test_row_weights_count_rows_and_a_constant_weight_changes_nothing(data):
    """Weights are rescaled to mean 1 (C keeps its meaning), so counts of a same-size resample fit that resample."""
    train, val = data.indices("train"), data.indices("val")
    X, y = data.image, data.labels
    plain = LinearProbe(Cs=(0.1,)).fit(X[train], y[train], X[val], y[val])
    doubled = LinearProbe(Cs=(0.1,)).fit(X[train], y[train], X[val], y[val], row_weight=np.full(train.size, 2.0))
    np.testing.assert_allclose(doubled.coef_, plain.coef_, atol=1e-4)
    drawn = np.sort(np.random.default_rng(0).integers(0, train.size, train.size))
    counts = np.bincount(drawn, minlength=train.size).astype(float)
    repeated = LinearProbe(Cs=(0.1,), standardize=False, tol=1e-6).fit(X[train][drawn], y[train][drawn], X[val], y[val])
    weighted = LinearProbe(Cs=(0.1,), standardize=False, tol=1e-6).fit(X[train], y[train], X[val], y[val],
                                                                        row_weight=counts)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=2e-3)


def test_resampling_draws_every_group_about_equally(data):
    train, val = data.indices("train"), data.indices("val")
    groups = (np.arange(len(data.labels)) % 5 == 0).astype(np.int64)  # a 20% group
    head = ResampledLinear(Cs=(0.1,)).fit(data.image[train], data.labels[train], data.image[val], data.labels[val],
                                          groups=groups[train], groups_val=groups[val])
    drawn = {g: row["drawn"] for g, row in head.chosen_on_val()["groups"].items()}
    assert abs(drawn[1] / (drawn[0] + drawn[1]) - 0.5) < 0.05


def test_group_dro_searches_its_step_size_on_a_subset_and_trains_the_chosen_one_on_all_rows(data):
    train, val = data.indices("train"), data.indices("val")
    groups = (data.patient % 3 == 0).astype(np.int64)
    head = GroupDROLinear(step_sizes=(0.01, 1.0), search_rows=500, max_epochs=3)
    head.fit(data.image[train], data.labels[train], data.image[val], data.labels[val], groups=groups[train],
             groups_val=groups[val])
    chosen = head.chosen_on_val()
    assert chosen["step_size_search_rows"] == 500 and set(head.val_worst_by_step_) == {0.01, 1.0}
    assert chosen["step_size"] == min(head.val_worst_by_step_, key=head.val_worst_by_step_.get)
    assert sum(chosen["group_weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert head.predict_proba(data.image[val]).shape == data.labels[val].shape
