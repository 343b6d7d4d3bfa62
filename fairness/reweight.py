"""Prevalence reweighting: fixed image weights that give every group the test set's prevalence, so that a gap
left after reweighting is not a difference of case mix (`evaluate(reweight_prevalence=True)`).

Weights are set per atom (the finest cell of the attributes: sex x age by default; every group is a union
of atoms, so every group inherits the overall prevalence):

- multi-label: per class c, an image of atom a whose label is v gets P(y_c = v) / P(y_c = v | a)
  (post-stratification class by class). A per-class figure (TPR_c, F1_c, AUC_c, the calibration of class c)
  uses class c's weights only, so every class is balanced at once. Exact-match accuracy keeps weight 1.
- single-label: one weight per image, P(k) / P(k | a) for its class k: every atom gets the overall class
  distribution, for every class-wise figure, the top-label calibration and accuracy alike.

An atom without images of a value (no positive of class c, say) cannot be reweighted for it: its images keep
weight 1 for that class, and `unmatched` names them. The weights are computed once on the test set and held
fixed: bootstrap CIs do not include their estimation error. Under a permutation an image takes the weight of
its new atom (the stratified permutation keeps every atom's label counts, so the weights stay a function of
label and atom).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Reweighting:
    """`table` [C, 2, A]: weight of (class, label value, atom) (single-label: [K, 1, A], the class of the image)."""

    table: np.ndarray
    kind: str
    labels: np.ndarray  # [n, C] 0/1 (multi) or [n] class index (single)
    unmatched: tuple

    def multipliers(self, atom_of_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(per class [n, C], per calibration channel [n, K], per image [n]) for images in these atoms."""
        atom_of_image = np.asarray(atom_of_image)
        if self.kind == "single":
            weight = self.table[self.labels, 0, atom_of_image]
            n_classes = self.table.shape[0]
            return np.repeat(weight[:, None], n_classes, axis=1), weight[:, None], weight
        classes = np.arange(self.table.shape[0])[None, :]
        by_class = self.table[classes, self.labels, atom_of_image[:, None]]
        return by_class, by_class, np.ones(atom_of_image.size)


def _ratio_table(counts: np.ndarray) -> np.ndarray:
    """[V, A] counts of value v in atom a -> weights P(v) / P(v | a); 1 where an atom lacks a value."""
    overall = counts.sum(axis=1) / max(counts.sum(), 1)
    per_atom = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    weights = np.ones(counts.shape)
    np.divide(overall[:, None], per_atom, out=weights, where=per_atom > 0)
    lacking = (counts == 0).any(axis=0) & (counts.sum(axis=0) > 0)
    weights[:, lacking] = 1.0
    return weights


def atom_names(groups) -> list[str]:
    """A readable name of every atom of a GroupSet ("F,<60"; "missing" for a missing value)."""
    return [",".join(levels[code] if code >= 0 else "missing" for levels, code in zip(groups.base_levels, codes))
            for codes in groups.atom_codes]


def prevalence_weights(y: np.ndarray, groups, kind: str, classes, known: np.ndarray | None = None) -> Reweighting:
    """The weights of the test images `y` [n, C] in the atoms of `groups` (see the module docstring); `known`
    [n, C] (multi-label): prevalences count only the known labels of each class (masked entries left out)."""
    atom_of_image = groups.atom_of_image
    names = atom_names(groups)
    n_atoms = groups.n_atoms
    if kind == "single":
        labels = np.argmax(y, axis=1)
        counts = np.zeros((y.shape[1], n_atoms))
        np.add.at(counts, (labels, atom_of_image), 1)
        weights = _ratio_table(counts)
        unmatched = tuple(names[a] for a in np.flatnonzero((counts == 0).any(axis=0) & (counts.sum(axis=0) > 0)))
        return Reweighting(weights[:, None, :], kind, labels, unmatched)
    table = np.ones((y.shape[1], 2, n_atoms))
    unmatched = []
    for c in range(y.shape[1]):
        counts = np.zeros((2, n_atoms))
        np.add.at(counts, (y[:, c].astype(np.int64), atom_of_image), 1 if known is None else known[:, c])
        table[c] = _ratio_table(counts)
        lacking = np.flatnonzero((counts == 0).any(axis=0) & (counts.sum(axis=0) > 0))
        unmatched += [f"{classes[c]} in {names[a]}" for a in lacking]
    return Reweighting(table, kind, y.astype(np.int64), tuple(unmatched))
