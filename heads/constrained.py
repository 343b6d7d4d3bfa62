"""Fairness-constrained classifiers from fairlearn, one binary problem per class: group-specific thresholds
(post-processing) and the exponentiated-gradient reduction (in-processing).

- `GroupThresholds`: fairlearn's `ThresholdOptimizer` (Hardt, Price & Srebro, NeurIPS 2016) over a plain head's
  scores. The plain head (linear probe, or MLP) is fitted on train; for each class, the thresholds of each
  group are fitted on val under equalized odds (equal TPR and FPR across groups) or equal opportunity (equal
  TPR), maximising balanced accuracy. **It needs the protected attribute at test time**: each image is
  thresholded by its own group's rule.
- `ReductionsProbe`: fairlearn's `ExponentiatedGradient` (Agarwal et al., ICML 2018) with `EqualizedOdds` or
  `TruePositiveRateParity`, over a logistic regression (C chosen on val by the plain linear probe, solved by
  the same float32 L-BFGS as `heads.linear`), minimising the balanced error (fairlearn's `ErrorRate` with
  costs in the ratio of the class's negatives to positives; "error" for the plain error rate). The attribute
  is needed while fitting only. Its cost grows with rows x classes x oracle calls, so at most `max_rows`
  training rows are used (a seeded random subset).

Both are randomised classifiers: what they write for a class is their decision (1 or 0), drawn with a seed
derived from `random_state` and the class, not a probability; any decision threshold in (0, 1] recovers it
(`chosen_on_val()["decision_columns"]` names those columns, and the leaderboard keeps them at 0.5).
Single-label (softmax) tasks are refused: fairlearn's constraints are binary. A class whose val (thresholds)
or train (reduction) rows have fewer than `min_group_positives` positives or negatives in some group is not
constrained (thresholds fitted on a handful of positives do not carry over to new images); it keeps the plain
head's probability and is listed in `unconstrained_classes_`.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from heads.common import HeadRecord, checked_features, holdout_rows, row_weights, task_kind_of, to_float32
from heads.linear import DEFAULT_CS, LinearProbe, fit_lbfgs
from heads.mitigation import group_codes

CONSTRAINTS = {"equalized_odds": "equalized_odds", "equal_opportunity": "true_positive_rate_parity"}
"""Our name -> fairlearn's `ThresholdOptimizer` constraint (the reduction takes the matching Moment class)."""
ERR_SINGLE = ("fairlearn's fairness constraints are binary: {name} handles multi-label and binary tasks (one "
              "binary problem per class), not single-label (softmax) tasks")
ERR_UNSEEN = "group code(s) {codes} at prediction were not among the groups it was fitted with ({known})"


def _check_constraints(constraints: str) -> None:
    if constraints not in CONSTRAINTS:
        raise ValueError(f"constraints must be one of {sorted(CONSTRAINTS)}, got {constraints!r}")


@contextlib.contextmanager
def _quiet_fairlearn():
    """fairlearn's own pandas deprecation warnings are not the user's business (silenced here only)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="fairlearn")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def _decision_seed(random_state: int, column: int) -> int:
    return int(np.random.SeedSequence([int(random_state), int(column)]).generate_state(1)[0])


def _constrainable(labels: np.ndarray, groups: np.ndarray, minimum: int) -> bool:
    """Every group has at least `minimum` positives and negatives (rows with a masked label already left out)."""
    minimum = max(1, int(minimum))
    return all(minimum <= labels[groups == g].sum() <= (groups == g).sum() - minimum for g in np.unique(groups))


def _observed(y: np.ndarray, column: int) -> np.ndarray:
    return np.flatnonzero(y[:, column] >= 0)


class _ScoreColumn(ClassifierMixin, BaseEstimator):
    """An already-fitted 'estimator' whose input is one score column: lets ThresholdOptimizer post-process
    scores computed once by the plain head."""

    def fit(self, X=None, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        score = np.asarray(X, dtype=np.float64)[:, 0]
        return np.column_stack([1.0 - score, score])


class GroupThresholds(HeadRecord, BaseEstimator):
    """Group-specific thresholds per class by fairlearn's ThresholdOptimizer (see the module docstring).

    Learned attributes: `base_` (the plain head), `optimizers_` (one ThresholdOptimizer or None per class),
    `unconstrained_classes_`, `groups_seen_`, `thresholds_` (per class and group: fairlearn's interpolation).
    """

    def __init__(self, constraints: str = "equalized_odds", *, objective: str = "balanced_accuracy_score",
                 base: str = "linear", grid_size: int = 1000, min_group_positives: int = 10, random_state: int = 0,
                 n_classes: int | None = None):
        self.constraints = constraints
        self.objective = objective
        self.base = base
        self.grid_size = grid_size
        self.min_group_positives = min_group_positives
        self.random_state = random_state
        self.n_classes = n_classes

    def fit(self, X, y, X_val=None, y_val=None, *, groups=None, groups_val=None):
        _check_constraints(self.constraints)
        y = np.asarray(y)
        if task_kind_of(y) == "single":
            raise ValueError(ERR_SINGLE.format(name="group-specific thresholds"))
        X = checked_features(self, X, fitting=True)
        if X_val is None:
            train, val = holdout_rows(len(y), 0.2, self.random_state)
            X, X_val, y, y_val = X[train], X[val], y[train], y[val]
            groups_val = None if groups is None else np.asarray(groups)[val]
        y_val = np.asarray(y_val)
        self.base_ = self._plain().fit(X, y, X_val, y_val)
        return self.fit_thresholds(self.base_.predict_proba(X_val), y_val, group_codes(groups_val, len(y_val)))

    def fit_thresholds(self, scores: np.ndarray, y_val: np.ndarray, codes: np.ndarray) -> "GroupThresholds":
        """The post-processing step alone: per class, fit the group thresholds on the plain head's val scores."""
        self.groups_seen_ = [int(g) for g in np.unique(codes)]
        self.optimizers_ = [self._fit_class(scores[:, c], y_val[:, c], codes) for c in range(y_val.shape[1])]
        self.unconstrained_classes_ = [c for c, optimizer in enumerate(self.optimizers_) if optimizer is None]
        self.thresholds_ = {c: _interpolation(optimizer) for c, optimizer in enumerate(self.optimizers_) if optimizer}
        return self

    def _plain(self):
        if self.base == "linear":
            return LinearProbe(random_state=self.random_state, n_classes=self.n_classes)
        if self.base == "mlp":
            from heads.mlp import MLPHead

            return MLPHead(random_state=self.random_state, n_classes=self.n_classes)
        raise ValueError(f"base must be 'linear' or 'mlp', got {self.base!r}")

    def _fit_class(self, score: np.ndarray, labels: np.ndarray, codes: np.ndarray):
        from fairlearn.postprocessing import ThresholdOptimizer

        rows = np.flatnonzero(labels >= 0)
        if not _constrainable(labels[rows], codes[rows], self.min_group_positives):
            return None
        optimizer = ThresholdOptimizer(estimator=_ScoreColumn().fit(), constraints=CONSTRAINTS[self.constraints],
                                       objective=self.objective, grid_size=self.grid_size, prefit=True,
                                       predict_method="predict_proba")
        with _quiet_fairlearn():
            return optimizer.fit(score[rows, None], labels[rows], sensitive_features=codes[rows])

    def predict_proba(self, X, *, groups=None) -> np.ndarray:
        """Per class: the post-processed decision (0/1, drawn with a fixed seed), or the plain head's
        probability for an unconstrained class. `groups`: the protected attribute of each row (required)."""
        X = checked_features(self, X, fitting=False)
        return self.apply_thresholds(self.base_.predict_proba(X), group_codes(groups, X.shape[0]))

    def apply_thresholds(self, scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The post-processing step alone: the plain head's scores -> decisions (see `predict_proba`)."""
        _check_seen(codes, self.groups_seen_)
        out = scores.copy()
        for c, optimizer in enumerate(self.optimizers_):
            if optimizer is not None:
                with _quiet_fairlearn():
                    out[:, c] = optimizer.predict(scores[:, c, None], sensitive_features=codes,
                                                  random_state=_decision_seed(self.random_state, c))
        return out

    def predict(self, X, *, groups=None) -> np.ndarray:
        return (self.predict_proba(X, groups=groups) >= 0.5).astype(np.int8)

    def chosen_on_val(self) -> dict:
        return {"base": self.base, "base_chosen": self.base_.chosen_on_val(), "thresholds": self.thresholds_,
                "unconstrained_classes": self.unconstrained_classes_, "decisions": True,
                "decision_columns": [c for c, o in enumerate(self.optimizers_) if o is not None],
                "needs_attribute_at_test": True}


class LogisticOracle(ClassifierMixin, BaseEstimator):
    """Binary L2 logistic regression at a fixed C with `sample_weight` (fairlearn's reductions reweigh rows),
    solved by the linear probe's float32 L-BFGS; inputs are taken as they come (standardise first)."""

    def __init__(self, C: float = 1.0, max_iter: int = 100, tol: float = 1e-4):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None):
        X = to_float32(np.asarray(X, dtype=np.float32))
        y = np.asarray(y).astype(np.int64).reshape(-1)
        self.classes_ = np.array([0, 1])
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        coef = torch.zeros(X.shape[1], 8, requires_grad=True)
        if y.min() == y.max() or (weight is not None and weight[y == 1].sum() * weight[y == 0].sum() == 0):
            positive = y.max() if weight is None or weight.sum() == 0 else float(np.average(y, weights=weight))
            self.coef_, self.intercept_ = np.zeros(X.shape[1], np.float32), np.float32(40.0 * (2 * positive - 1))
            return self
        rate = float(np.average(y, weights=weight))
        bias = torch.tensor([np.log(rate / (1 - rate))], dtype=torch.float32, requires_grad=True)
        target = torch.from_numpy(y.astype(np.float32))[:, None]
        fit_lbfgs(X, target, coef, bias, 1.0 / (self.C * len(y)), self.max_iter, self.tol, torch.tensor([False]),
                  row_weights(weight, len(y)))
        self.coef_, self.intercept_ = coef.detach()[:, 0].numpy().copy(), np.float32(bias.detach()[0])
        return self

    def predict(self, X):
        return ((np.asarray(X, dtype=np.float32) @ self.coef_ + self.intercept_) > 0).astype(np.int64)


class ReductionsProbe(HeadRecord, BaseEstimator):
    """A logistic probe under a fairness constraint by fairlearn's ExponentiatedGradient, per class.

    Learned attributes: `C_` (chosen on val by the plain probe), `mean_`, `scale_` (standardisation),
    `plain_` (the plain probe, kept for unconstrained classes), `reductions_` (one ExponentiatedGradient or None
    per class), `unconstrained_classes_`, `rows_used_`, `oracle_calls_` (per class).
    """

    def __init__(self, constraints: str = "equalized_odds", *, objective: str = "balanced_error",
                 difference_bound: float = 0.01, max_iter: int = 50, max_rows: int = 20000, Cs=DEFAULT_CS,
                 min_group_positives: int = 10, random_state: int = 0, n_classes: int | None = None):
        self.constraints = constraints
        self.objective = objective
        self.difference_bound = difference_bound
        self.min_group_positives = min_group_positives
        self.max_iter = max_iter
        self.max_rows = max_rows
        self.Cs = Cs
        self.random_state = random_state
        self.n_classes = n_classes

    def fit(self, X, y, X_val=None, y_val=None, *, groups=None, groups_val=None):
        _check_constraints(self.constraints)
        if self.objective not in ("balanced_error", "error"):
            raise ValueError(f"objective must be 'balanced_error' or 'error', got {self.objective!r}")
        y = np.asarray(y)
        if task_kind_of(y) == "single":
            raise ValueError(ERR_SINGLE.format(name="the exponentiated-gradient reduction"))
        X = checked_features(self, X, fitting=True)
        self.plain_ = LinearProbe(Cs=self.Cs, random_state=self.random_state, n_classes=self.n_classes)
        self.plain_.fit(X, y, X_val, y_val)
        self.C_ = self.plain_.C_
        codes = group_codes(groups, len(y))
        rows = np.arange(len(y))
        if len(y) > self.max_rows:
            rows = np.sort(np.random.default_rng([int(self.random_state), 2]).choice(len(y), self.max_rows, replace=False))
        self.rows_used_ = int(rows.size)
        X_rows = to_float32(X[rows])
        self.mean_, self.scale_ = X_rows.mean(dim=0), X_rows.std(dim=0).clamp_min(1e-6)
        standardised = ((X_rows - self.mean_) / self.scale_).numpy()
        self.reductions_ = [self._fit_class(standardised, y[rows], codes[rows], c) for c in range(y.shape[1])]
        self.unconstrained_classes_ = [c for c, reduction in enumerate(self.reductions_) if reduction is None]
        self.oracle_calls_ = {c: int(r.n_oracle_calls_) for c, r in enumerate(self.reductions_) if r is not None}
        return self

    def _fit_class(self, X: np.ndarray, y: np.ndarray, codes: np.ndarray, column: int):
        from fairlearn.reductions import EqualizedOdds, ErrorRate, ExponentiatedGradient, TruePositiveRateParity

        rows = _observed(y, column)
        labels = y[rows, column]
        if not _constrainable(labels, codes[rows], self.min_group_positives):
            return None
        moment = EqualizedOdds if self.constraints == "equalized_odds" else TruePositiveRateParity
        rate = float(labels.mean())
        costs = {"fp": 2 * rate, "fn": 2 * (1 - rate)} if self.objective == "balanced_error" else None
        reduction = ExponentiatedGradient(LogisticOracle(C=self.C_), constraints=moment(difference_bound=self.difference_bound),
                                          objective=ErrorRate(costs=costs), max_iter=self.max_iter)
        with _quiet_fairlearn():
            return reduction.fit(X[rows], labels, sensitive_features=codes[rows])

    def predict_proba(self, X, *, groups=None) -> np.ndarray:
        """Per class: the reduction's decision (0/1, drawn with a fixed seed), or the plain probe's probability
        for an unconstrained class. The attribute is not needed here (`groups` is ignored)."""
        X = checked_features(self, X, fitting=False)
        out = self.plain_.predict_proba(X)
        standardised = ((to_float32(X) - self.mean_) / self.scale_).numpy()
        for c, reduction in enumerate(self.reductions_):
            if reduction is not None:
                with _quiet_fairlearn():
                    out[:, c] = reduction.predict(standardised, random_state=_decision_seed(self.random_state, c))
        return out

    def predict(self, X, *, groups=None) -> np.ndarray:
        return (self.predict_proba(X) >= 0.5).astype(np.int8)

    def chosen_on_val(self) -> dict:
        return {"C": self.C_, "rows_used": self.rows_used_, "oracle_calls": self.oracle_calls_,
                "unconstrained_classes": self.unconstrained_classes_, "decisions": True,
                "decision_columns": [c for c, r in enumerate(self.reductions_) if r is not None],
                "needs_attribute_at_test": False}


def _check_seen(codes: np.ndarray, seen: list[int]) -> None:
    unseen = sorted(set(np.unique(codes).tolist()) - set(seen))
    if unseen:
        raise ValueError(ERR_UNSEEN.format(codes=unseen, known=seen))


def _interpolation(optimizer) -> dict:
    """Per group: fairlearn's randomised rule as plain data (threshold(s) on the score and their weights)."""
    rules = {}
    for group, rule in optimizer.interpolated_thresholder_.interpolation_dict.items():
        rules[str(group)] = {
            "p0": round(float(rule["p0"]), 6), "rule0": repr(rule["operation0"]),
            "p1": round(float(rule["p1"]), 6), "rule1": repr(rule["operation1"]),
            "p_ignore": round(float(rule.get("p_ignore", 0.0)), 6),
        }
    return rules
