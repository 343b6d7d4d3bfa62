"""Sufficient statistics per atom, for many weightings of the images at once (vectorised over replicates).

Every metric the engine reports is a function of sums that add up over images, so a bootstrap replicate
(images weighted by how often their patient was drawn) or a permutation (images re-assigned to groups) is
just another weighting. For B weightings at once:

- counting statistics (count, positives, predicted positives, true positives, squared and absolute errors,
  correct calls, calibration-bin sums: `fairness.calibration`) are one matrix product: weights [B, units] @
  features [units, F], where a unit is a (patient, atom) pair; the few "square" features of the debiased
  calibration error take a second product with the squared weights;
- AUC comes from weighted Mann-Whitney sums (`fairness.mann_whitney`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairness import calibration
from fairness.mann_whitney import (
    mann_whitney_binned,
    mann_whitney_fixed,
    mann_whitney_variable,
    rank_bins,
)

__all__ = ["AtomStats", "Layout", "Units", "fixed_atom_stats", "image_features", "rank_bins", "sum_features",
           "variable_atom_stats"]


@dataclass(frozen=True)
class Layout:
    """Column positions of the per-unit features for C classes and K calibration channels.

    Linear features (weighted by w): `count` (images), then per class `class_count` (the images whose label
    of the class is known: 0 for a masked entry), `positives`, `predicted`, `true_positives`, `squared_error`
    (p - y)^2, `abs_error` |p - y|; `correct` (every known class decided right); then the calibration blocks. Square features (weighted by w^2): `calibration.SQUARE_BLOCKS`.
    """

    n_classes: int
    n_channels: int

    def _blocks(self) -> list[tuple[str, int]]:
        per_class = [(name, self.n_classes) for name in
                     ("class_count", "positives", "predicted", "true_positives", "squared_error", "abs_error")]
        return [("count", 1), *per_class, ("correct", 1), ("calibration", self.calibration_width)]

    @property
    def calibration_width(self) -> int:
        return 3 * self.n_channels * calibration.N_BINS

    def __getitem__(self, name: str) -> slice:
        start = 0
        for block, width in self._blocks():
            if block == name:
                return slice(start, start + width)
            start += width
        raise KeyError(name)

    @property
    def width(self) -> int:
        return sum(width for _, width in self._blocks())

    @property
    def square_width(self) -> int:
        return 2 * self.n_channels * calibration.N_BINS


def image_features(y: np.ndarray, p: np.ndarray, decisions: np.ndarray, kind: str,
                   multipliers: tuple | None = None, known: np.ndarray | None = None) -> tuple:
    """Per-image features (see `Layout`): (dense linear columns [n, F - calibration], sparse calibration
    columns [n, calibration], sparse square columns [n, F2], layout), float64.

    `multipliers`: (per class [n, C], per calibration channel [n, K], per image [n]) fixed weights (the
    prevalence reweighting of `fairness.reweight`, 0 for a masked entry); None for weights 1. `known` [n, C]:
    False for a masked entry (multi-label), which the exact-match `correct` skips and the equal-mass
    calibration bins leave out of their edges; None when nothing is masked.
    """
    n, classes = y.shape
    scores, outcomes = calibration.channels(y, p, kind)
    layout = Layout(classes, scores.shape[1])
    by_class, by_channel, by_image = multipliers or (np.ones((n, classes)), None, np.ones(n))
    features = np.zeros((n, layout["calibration"].start), dtype=np.float64)
    features[:, layout["count"].start] = 1.0
    features[:, layout["class_count"]] = by_class
    features[:, layout["positives"]] = y * by_class
    features[:, layout["predicted"]] = decisions * by_class
    features[:, layout["true_positives"]] = y * decisions * by_class
    residual = p - y
    features[:, layout["squared_error"]] = residual * residual * by_class
    features[:, layout["abs_error"]] = np.abs(residual) * by_class
    right = decisions == y if known is None else (decisions == y) | ~known
    features[:, layout["correct"].start] = np.all(right, axis=1) * by_image
    linear, square = calibration.features(scores, outcomes, by_channel, known)
    return features, linear, square, layout


@dataclass
class AtomStats:
    """Statistics of B weightings: `sums` [B, K, F] and `squares` [B, K, F2] per atom, `pairs` [B, C, K, K]
    Mann-Whitney sums. `atoms` lists the atom indices (of the GroupSet) the K positions stand for."""

    sums: np.ndarray
    squares: np.ndarray
    pairs: np.ndarray
    atoms: np.ndarray
    layout: Layout


@dataclass(frozen=True)
class Units:
    """Images grouped into (patient, atom) units, and their summed features (linear and square)."""

    unit_of_image: np.ndarray  # [n]
    patient: np.ndarray  # [U] patient index of each unit
    atom: np.ndarray  # [U] atom of each unit
    features: np.ndarray  # [U, F]
    squares: np.ndarray  # [U, F2]
    layout: Layout
    membership: object  # scipy.sparse [U, n]: image i belongs to unit u
    multipliers: np.ndarray | None = None  # [n, C] per-class image weights for AUC (None: 1)

    @classmethod
    def build(cls, patient_of_image: np.ndarray, atom_of_image: np.ndarray, features: tuple,
              multipliers: np.ndarray | None = None) -> "Units":
        """`features`: (dense, calibration, square, layout) from `image_features`."""
        from scipy import sparse

        n = patient_of_image.size
        keys = patient_of_image.astype(np.int64) * (int(atom_of_image.max(initial=0)) + 1) + atom_of_image
        unique_keys, unit_of_image = np.unique(keys, return_inverse=True)
        unit_of_image = unit_of_image.reshape(-1)
        first = np.zeros(unique_keys.size, dtype=np.int64)
        first[unit_of_image[::-1]] = np.arange(n)[::-1]
        membership = sparse.csr_matrix((np.ones(n), (unit_of_image, np.arange(n))), shape=(unique_keys.size, n))
        linear, square = sum_features(membership, features)
        return cls(unit_of_image, patient_of_image[first], atom_of_image[first], linear, square, features[3],
                   membership, multipliers)


def sum_features(membership, features: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit sums (linear [U, F], square [U, F2]) of per-image `features` from `image_features`."""
    dense, calibration_columns, square, _ = features
    linear = np.hstack([membership @ dense, (membership @ calibration_columns).toarray()])
    return linear, (membership @ square).toarray()


def fixed_atom_stats(units: Units, unit_weights: np.ndarray, *, scores, y, atom_of_image, dtype=np.float64,
                     auc_bins: int | None = None, bins_by_class=None, point_only: tuple = ()) -> AtomStats:
    """Statistics for B weightings of the units, `unit_weights` [U, B] (replicates last); images keep their atom.

    `auc_bins` None: exact AUC sums; an int: scores rounded to that many rank bins (much faster).
    `point_only`: names of `Layout` or calibration blocks left at 0 (figures reported without replicates).
    """
    weights_t = np.ascontiguousarray(unit_weights, dtype=dtype)
    squared_t = weights_t * weights_t
    atoms = np.unique(units.atom)
    n_rep = weights_t.shape[1]
    sums = np.zeros((n_rep, atoms.size, units.features.shape[1]), dtype=np.float64)
    squares = np.zeros((n_rep, atoms.size, units.squares.shape[1]), dtype=np.float64)
    columns = _columns_without(units.layout, point_only)
    features, square_features = units.features[:, columns].astype(dtype), units.squares.astype(dtype)
    for k, atom in enumerate(atoms):
        members = np.flatnonzero(units.atom == atom)
        sums[:, k, columns] = (features[members].T @ weights_t[members]).T
        squares[:, k, :] = (square_features[members].T @ squared_t[members]).T
    if auc_bins is None:
        pairs = mann_whitney_fixed(scores, y, atom_of_image, weights_t[units.unit_of_image], atoms, dtype,
                                   units.multipliers)
    else:
        pairs = mann_whitney_binned(scores, y, units.unit_of_image, weights_t, atom_of_image, atoms, auc_bins,
                                    dtype, bins_by_class, units.multipliers)
    return AtomStats(sums, squares, pairs, atoms, units.layout)


def _columns_without(layout: Layout, names) -> np.ndarray:
    """Linear feature columns without the named blocks (`Layout` blocks or the calibration's `LINEAR_BLOCKS`)."""
    keep = np.ones(layout.width, dtype=bool)
    for name in names:
        if name in calibration.LINEAR_BLOCKS:
            keep[calibration.block(calibration.LINEAR_BLOCKS, name, layout.n_channels, layout["calibration"].start)] = False
        else:
            keep[layout[name]] = False
    return keep


def _permutation_columns(layout: Layout, *, weighted: bool) -> tuple:
    """The feature columns a permutation computes: not the equal-width calibration sums (no tested figure uses
    `ece_binned`); without fixed weights, the square counts are copied from the linear counts (0/1 weights).
    Returns (linear columns, square columns, (linear count columns, square count columns) or None)."""
    start = layout["calibration"].start
    k = layout.n_channels
    linear = _columns_without(layout, ("width_sum",))
    square = np.ones(layout.square_width, dtype=bool)
    if weighted:
        return linear, square, None
    square_counts = calibration.block(calibration.SQUARE_BLOCKS, "mass_square_count", k)
    square[square_counts] = False
    return linear, square, (calibration.block(calibration.LINEAR_BLOCKS, "mass_count", k, start), square_counts)


def variable_atom_stats(units: Units, unit_atoms: np.ndarray, *, scores, y, dtype=np.float64,
                        auc_bins: int | None = None, bins_by_class=None, atom_weights=None) -> AtomStats:
    """Statistics for B re-assignments of units to atoms [B, U] (permutations), every unit weighted 1.

    `atom_weights` (prevalence reweighting): atom -> (unit features [U, F], unit square features [U, F2],
    image multipliers [n, C]) as they would be with every image in that atom; None: the units' own.
    """
    unit_atoms = np.asarray(unit_atoms)
    atoms = np.unique(unit_atoms)
    per_atom = [atom_weights(atom) for atom in atoms] if atom_weights is not None else None
    sums = np.zeros((unit_atoms.shape[0], atoms.size, units.features.shape[1]), dtype=np.float64)
    squares = np.zeros((unit_atoms.shape[0], atoms.size, units.squares.shape[1]), dtype=np.float64)
    linear_columns, square_columns, counts_from = _permutation_columns(units.layout, weighted=per_atom is not None)
    shared = (units.features[:, linear_columns].astype(dtype), units.squares[:, square_columns].astype(dtype))
    for k, atom in enumerate(atoms):
        member = (unit_atoms == atom).astype(dtype)
        features, square_features = shared if per_atom is None else (
            per_atom[k][0][:, linear_columns].astype(dtype), per_atom[k][1][:, square_columns].astype(dtype))
        sums[:, k, linear_columns] = member @ features
        squares[:, k, square_columns] = member @ square_features
        if counts_from is not None:  # weights 0/1: sum of w^2 = sum of w
            squares[:, k, counts_from[1]] = sums[:, k, counts_from[0]]
    multipliers = [weights[2] for weights in per_atom] if per_atom else (
        None if units.multipliers is None else [units.multipliers] * atoms.size)  # masked entries: 0
    if auc_bins is None:
        pairs = mann_whitney_variable(scores, y, unit_atoms[:, units.unit_of_image], atoms, dtype, multipliers)
    else:
        memberships = np.stack([np.ascontiguousarray((unit_atoms == atom).T, dtype=dtype) for atom in atoms])
        pairs = mann_whitney_binned(scores, y, units.unit_of_image, memberships, None, atoms, auc_bins, dtype,
                                    bins_by_class, multipliers)
    return AtomStats(sums, squares, pairs, atoms, units.layout)
