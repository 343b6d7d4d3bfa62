"""One head per member of an ensemble, its probabilities the mean of the members' probabilities.

CheXzero's authors ensemble their checkpoints this way for zero-shot (rajpurkarlab/CheXzero,
`notebooks/zero_shot_jpnb.py::ensemble_models`: each checkpoint's softmax over the "{}" / "no {}" pair, then
`np.mean` over the checkpoints). The features are the members' embeddings side by side ([n, sum of widths],
`cache.ensemble.StoreEnsemble`); member k fits and predicts on its own block of columns only, so each member's
probabilities are exactly those the head gives on that member's store alone.

    head = MemberAverage([ZeroShotHead(...), ZeroShotHead(...)], widths=(512, 512))
    head.fit(X_val, y_val, rows=rows).predict_proba(X_test, rows=rows_test)   # the mean of the two heads'
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from heads.common import HeadRecord


class MemberAverage(HeadRecord, BaseEstimator):
    """Parameters: `members`, unfitted estimators (one per ensemble member, same kind); `widths`, the number of
    feature columns of each member, in order. Learned attribute: `n_features_in_`."""

    def __init__(self, members, widths):
        self.members = members
        self.widths = widths

    def _blocks(self, X) -> list:
        widths = [int(width) for width in self.widths]
        if len(widths) != len(self.members) or len(widths) < 2:
            raise ValueError(f"an ensemble needs two or more members and one width each; got {len(self.members)} "
                             f"members and widths {widths}")
        if np.shape(X)[1] != sum(widths):
            raise ValueError(f"X has {np.shape(X)[1]} features, but the members' embeddings have {sum(widths)} "
                             f"({' + '.join(map(str, widths))})")
        edges = np.cumsum([0, *widths])
        return [X[:, start:stop] for start, stop in zip(edges[:-1], edges[1:])]

    def fit(self, X, y=None, X_val=None, y_val=None, **kwargs) -> "MemberAverage":
        """Fit each member on its block: `fit(X, y, **kwargs)` (zero-shot: X are the val images), or with
        validation data `fit(X, y, X_val, y_val)` (trained heads)."""
        blocks = self._blocks(X)
        val_blocks = self._blocks(X_val) if X_val is not None else [None] * len(blocks)
        for member, block, val_block in zip(self.members, blocks, val_blocks):
            if X_val is None:
                member.fit(block, y, **kwargs)
            else:
                member.fit(block, y, val_block, y_val, **kwargs)
        self.n_features_in_ = int(np.shape(X)[1])
        return self

    def predict_proba(self, X, **kwargs) -> np.ndarray:
        """The mean over members of each member's probabilities on its own block."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        probabilities = [member.predict_proba(block, **kwargs) for member, block in zip(self.members, self._blocks(X))]
        return np.mean(np.stack(probabilities), axis=0)

    def recorded_params(self) -> dict:
        """The members' hyperparameters (the same for every member) and how many members are averaged."""
        return {**self.members[0].recorded_params(), "member_average": len(self.members)}

    def chosen_on_val(self) -> dict:
        return {"members": [member.chosen_on_val() for member in self.members]}
