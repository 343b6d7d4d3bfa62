"""Masked labels (MASKED = -1) are left out of the heads' and fine-tuning's losses, never taken as negatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.schema import MASKED
from heads.common import loss_on_logits, macro_auc, target_tensor


def _mostly_masked(n: int, seed: int):
    """Uninformative features; class 0 observed on a quarter of the rows, 80% of those positive, the rest masked."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.zeros((n, 2), dtype=np.int64)
    observed = rng.random(n) < 0.25
    y[:, 0] = np.where(observed, (rng.random(n) < 0.8).astype(np.int64), MASKED)
    y[:, 1] = (rng.random(n) < 0.5).astype(np.int64)
    return X, y


def test_loss_skips_masked_entries():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    y = np.array([[1, MASKED], [0, 1], [MASKED, MASKED]])
    got = loss_on_logits(logits, target_tensor(y), reduction="sum")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits[0, 0], torch.tensor(1.0)) + bce(logits[1], torch.tensor([0.0, 1.0]), reduction="sum")
    assert torch.isclose(got, expected)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_a_head_learns_the_observed_prevalence_not_masked_as_negative(head):
    from heads.registry import get_head

    X, y = _mostly_masked(800, 0)
    X_val, y_val = _mostly_masked(200, 1)
    estimator = get_head(head).create(random_state=0, n_classes=2, **({"max_epochs": 20} if head == "mlp" else {}))
    estimator.fit(X, y, X_val, y_val)
    mean = estimator.predict_proba(_mostly_masked(400, 2)[0])[:, 0].mean()
    assert mean > 0.6  # ~0.8 observed; masked-as-negative would give ~0.2


def test_macro_auc_ignores_masked_rows():
    y = np.array([[1], [0], [MASKED], [MASKED]])
    p = np.array([[0.9], [0.1], [0.0], [1.0]])
    assert macro_auc(y, p) == 1.0  # the masked rows would make it 0.5 if they counted as negatives


def test_finetune_loss_skips_masked_entries():
    from benchmark.finetune.inference import per_sample_loss

    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    targets = torch.tensor([[1.0, float(MASKED)], [0.0, 1.0]])
    losses = per_sample_loss(logits, targets, "multi")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.isclose(losses[0], bce(logits[0, 0], torch.tensor(1.0)))
    assert torch.isclose(losses[1], bce(logits[1], torch.tensor([0.0, 1.0])))
