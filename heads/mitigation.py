"""Mitigation heads that learn with the protected groups: group-balanced reweighting and resampling, GroupDRO.

Each takes the protected attribute as one integer code per row (`groups`, `groups_val`; the pipeline codes the
levels of `--protect sex|age|race|insurance|sex*age|...`) and needs no attribute at test time. Without groups
(`groups=None`) every row is in one group and each head is exactly its plain head, so scikit-learn's common
checks apply to them as to every trained head.

- Reweighting (`ReweightedLinear`, `ReweightedMLP`): each row's loss is weighted by n / (G n_g), so that every
  group present weighs the same in the loss; C (linear) or the best epoch (MLP) is chosen on the val loss
  weighted the same way. Idea as in Kamiran & Calders (2012); for chest X-rays, Zhang et al. (CHIL 2022) found
  such simple balancing as good as the elaborate methods.
- Resampling (`ResampledLinear`, `ResampledMLP`): rows are drawn with replacement with probability proportional
  to those weights (a group-balanced sampler; a fresh draw every epoch for the MLP, one draw of n rows for the
  full-batch linear probe, where a row drawn k times counts k times).
- GroupDRO (`GroupDROLinear`, `GroupDROMLP`; Sagawa et al., ICLR 2020): minimise the worst group's expected loss
  with online group weights q (q_g <- q_g exp(eta L_g) after every mini-batch, renormalised; the loss is
  sum_g q_g L_g), the best epoch by the worst group's val loss, and the step size eta chosen on val the same
  way from `step_sizes`. With more than `search_rows` training rows, each eta of the search trains on a seeded
  random subset of that many rows (val stays whole) and the chosen eta then trains on all rows, so the search
  costs a fraction of one fit. Groups are the attribute's levels (not attribute x label, which a multi-label
  task does not have).
"""

from __future__ import annotations

import numpy as np
import torch

from heads.common import loss_on_logits
from heads.linear import LinearProbe
from heads.mlp import MLPHead
from heads.trained import TrainedHead, TrainingData, val_losses

DEFAULT_STEP_SIZES = (0.01, 0.1, 1.0)


def group_codes(groups, n: int) -> np.ndarray:
    """Group codes as int64 (all zeros when `groups` is None); ValueError for a wrong length or negatives."""
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    codes = np.asarray(groups).reshape(-1)
    if codes.size != n or not np.issubdtype(codes.dtype, np.integer) or (codes.size and codes.min() < 0):
        raise ValueError(f"groups must be {n} non-negative integer codes, one per row")
    return codes.astype(np.int64)


def balanced_weights(groups, n: int) -> np.ndarray | None:
    """n / (G n_g) for each row of group g (G: the groups present): every group weighs n / G in all.
    None when `groups` is None (no groups: every row weighs 1)."""
    if groups is None:
        return None
    codes = group_codes(groups, n)
    counts = np.bincount(codes)
    present = np.count_nonzero(counts)
    return n / (present * counts[codes].astype(np.float64))


def group_summary(groups, weights) -> dict:
    """{code: {"rows": n_g, "weight": the weight of one of its rows}} for the record."""
    codes = group_codes(groups, len(weights))
    return {int(g): {"rows": int((codes == g).sum()), "weight": round(float(weights[codes == g][0]), 6)}
            for g in np.unique(codes)}


class _GroupRecord:
    """Records the groups (rows, weight of a row) beside what the head chose on val."""

    def chosen_on_val(self) -> dict:
        return {**super().chosen_on_val(), "groups": self.groups_}


class _Reweighting(_GroupRecord):
    """Group-balanced row weights in the loss and in the val loss that makes the choices (C or best epoch)."""

    def fit(self, X, y, X_val=None, y_val=None, *, groups=None, groups_val=None):
        weight = balanced_weights(groups, len(y))
        self.groups_ = {} if weight is None else group_summary(groups, weight)
        val_weight = balanced_weights(groups_val, len(y_val)) if X_val is not None else None
        return super().fit(X, y, X_val, y_val, row_weight=weight, val_row_weight=val_weight)


class ReweightedLinear(_Reweighting, LinearProbe):
    """The linear probe with group-balanced row weights (in the fit and in the val loss that picks C)."""


class ReweightedMLP(_Reweighting, MLPHead):
    """The MLP with group-balanced row weights in every mini-batch loss and in the val loss (best epoch)."""


class ResampledLinear(_GroupRecord, LinearProbe):
    """The linear probe on n rows drawn with replacement from the group-balanced distribution (drawn once,
    from `random_state`; C picked by the group-balanced val loss)."""

    def fit(self, X, y, X_val=None, y_val=None, *, groups=None, groups_val=None):
        weight = balanced_weights(groups, len(y))
        draws, self.groups_ = None, {}
        if weight is not None:
            rng = np.random.default_rng([int(self.random_state), 1])
            draws = rng.multinomial(len(y), weight / weight.sum()).astype(np.float64)
            codes = group_codes(groups, len(y))
            self.groups_ = {g: {**row, "drawn": int(draws[codes == g].sum())}
                            for g, row in group_summary(groups, weight).items()}
        val_weight = balanced_weights(groups_val, len(y_val)) if X_val is not None else None
        return super().fit(X, y, X_val, y_val, row_weight=draws, val_row_weight=val_weight)


class ResampledMLP(_GroupRecord, MLPHead):
    """The MLP trained on a group-balanced sampler: every epoch draws n rows with replacement, each group
    equally likely; the best epoch by the group-balanced val loss."""

    def fit(self, X, y, X_val=None, y_val=None, *, groups=None, groups_val=None):
        weight = balanced_weights(groups, len(y))
        self.groups_ = {} if weight is None else group_summary(groups, weight)
        val_weight = balanced_weights(groups_val, len(y_val)) if X_val is not None else None
        return super().fit(X, y, X_val, y_val, val_row_weight=val_weight, groups=groups)

    def epoch_order(self, data: TrainingData, generator: torch.Generator) -> torch.Tensor:
        if data.groups is None:
            return super().epoch_order(data, generator)
        weight = torch.from_numpy(balanced_weights(data.groups.numpy(), data.n))
        return torch.multinomial(weight, data.n, replacement=True, generator=generator)


class GroupDROHead(TrainedHead):
    """GroupDRO (Sagawa et al., ICLR 2020) over a trained head; subclasses give the module (`build`).

    Learned attributes besides the trained head's: `step_size_` (eta chosen on val), `val_worst_by_step_`
    (worst-group val loss at each eta's best epoch in the search), `search_rows_` (training rows of the search),
    `group_weights_` (q at the end of training, by group code).
    """

    def __init__(self, *, step_sizes=DEFAULT_STEP_SIZES, search_rows: int = 10000, lr: float = 1e-3,
                 weight_decay: float = 1e-5, batch_size: int = 256, max_epochs: int = 50, patience: int = 3,
                 standardize: bool = True, hidden: int = 1024, holdout: float = 0.1, random_state: int = 0,
                 n_classes: int | None = None):
        super().__init__(lr=lr, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
                         patience=patience, standardize=standardize, hidden=hidden, holdout=holdout,
                         random_state=random_state, n_classes=n_classes)
        self.step_sizes = step_sizes
        self.search_rows = search_rows

    def fit(self, X, y, X_val=None, y_val=None, *, groups=None, groups_val=None):
        steps = sorted(float(step) for step in self.step_sizes)
        if not steps or min(steps) < 0:
            raise ValueError(f"step_sizes must be non-negative numbers, got {self.step_sizes!r}")
        groups = group_codes(groups, len(y))
        groups_val = group_codes(groups_val, len(y_val)) if X_val is not None else None
        search, subset = None, (X, y, groups)
        if len(y) > self.search_rows:
            search = np.sort(np.random.default_rng([int(self.random_state), 3]).choice(len(y), self.search_rows, replace=False))
            subset = (np.asarray(X)[search], np.asarray(y)[search], groups[search])
        best, scores = None, {}
        for step in steps:
            self._fit_step(step, subset[0], subset[1], X_val, y_val, subset[2], groups_val)
            scores[step] = self.val_loss_[self.best_epoch_ - 1]
            if best is None or scores[step] < best[0]:
                best = (scores[step], step, {key: value for key, value in vars(self).items() if key.endswith("_")})
        if search is None:
            vars(self).update(best[2])
        else:
            self._fit_step(best[1], X, y, X_val, y_val, groups, groups_val)
        self.val_worst_by_step_, self.search_rows_ = scores, len(y) if search is None else int(search.size)
        return self

    def _fit_step(self, step: float, X, y, X_val, y_val, groups, groups_val) -> None:
        self._step = step
        super().fit(X, y, X_val, y_val, groups=groups, groups_val=groups_val)
        self.group_weights_ = {g: round(float(w), 6) for g, w in enumerate(self._q)}

    def _start(self, data: TrainingData) -> None:
        self.step_size_ = self._step
        count = int(max(data.groups.max(), -1 if data.groups_val is None else data.groups_val.max())) + 1
        self._q = torch.full((count,), 1.0 / count)

    def batch_loss(self, logits: torch.Tensor, data: TrainingData, batch: torch.Tensor) -> torch.Tensor:
        losses = loss_on_logits(logits, data.target[batch], reduction="none")
        group_loss = _group_means(losses, data.groups[batch], self._q.numel())
        self._q = self._q * torch.exp(self.step_size_ * group_loss.detach())
        self._q = self._q / self._q.sum()
        return (group_loss * self._q).sum()

    def val_criterion(self, module: torch.nn.Module, data: TrainingData) -> float:
        """The worst group's mean val loss (the mean val loss without val groups)."""
        losses = val_losses(module, data)
        if data.groups_val is None:
            return float(losses.mean())
        counts = torch.bincount(data.groups_val)
        means = _group_means(losses, data.groups_val, counts.numel())
        return float(means[counts > 0].max())

    def chosen_on_val(self) -> dict:
        return {**super().chosen_on_val(), "step_size": self.step_size_, "group_weights": self.group_weights_,
                "val_worst_group_loss_by_step": {str(step): loss for step, loss in self.val_worst_by_step_.items()},
                "step_size_search_rows": self.search_rows_}


class GroupDROLinear(GroupDROHead):
    """GroupDRO on a linear classifier (embedding -> classes), trained by mini-batch AdamW from zero weights and
    the training prior's intercepts (as the linear probe starts), with a larger default learning rate and batch
    than the MLP's (a linear model on standardised inputs takes them; the batch still holds every group)."""

    def __init__(self, *, step_sizes=DEFAULT_STEP_SIZES, search_rows: int = 10000, lr: float = 1e-2,
                 weight_decay: float = 1e-4, batch_size: int = 1024, max_epochs: int = 50, patience: int = 3,
                 standardize: bool = True, hidden: int = 1024, holdout: float = 0.1, random_state: int = 0,
                 n_classes: int | None = None):
        super().__init__(step_sizes=step_sizes, search_rows=search_rows, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, max_epochs=max_epochs, patience=patience, standardize=standardize,
                         hidden=hidden, holdout=holdout, random_state=random_state, n_classes=n_classes)

    def build(self, dim: int, n_classes: int) -> torch.nn.Module:
        return torch.nn.Linear(dim, n_classes)

    def initialise(self, module: torch.nn.Module, data: TrainingData) -> None:
        target = data.target
        with torch.no_grad():
            module.weight.zero_()
            if target.dtype == torch.int64:
                counts = torch.bincount(target, minlength=module.out_features).double() + 1.0
                module.bias.copy_((counts / counts.sum()).log())
            else:
                observed = ~torch.isnan(target)
                rate = (torch.nan_to_num(target).sum(dim=0) + 1.0) / (observed.sum(dim=0) + 2.0)
                module.bias.copy_((rate / (1 - rate)).log())


class GroupDROMLP(GroupDROHead):
    """GroupDRO on the seed study's MLP (embedding -> hidden -> BatchNorm -> ReLU -> classes)."""

    build = MLPHead.build


def _group_means(losses: torch.Tensor, groups: torch.Tensor, count: int) -> torch.Tensor:
    """Mean loss of each group code 0..count-1 (0 for a group without rows)."""
    sums = torch.zeros(count, dtype=losses.dtype).index_add_(0, groups, losses)
    sizes = torch.bincount(groups, minlength=count).clamp_min(1).to(losses.dtype)
    return sums / sizes
