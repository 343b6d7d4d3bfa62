"""Sufficient statistics per atom, for many weightings of the images at once (vectorised over replicates).

Every metric the engine reports is a function of sums that add up over images, so a bootstrap replicate
(images weighted by how often their patient was drawn) or a permutation (images re-assigned to groups) is
just another weighting. For B weightings at once:

- counting statistics (count, positives, predicted positives, true positives, calibration-bin sums of
  p - y, sums of |p - y|, correct arg-max calls) are one matrix product: weights [B, units] @ features
  [units, F], where a unit is a (patient, atom) pair;
- AUC comes from weighted Mann-Whitney sums: for each class and each pair of atoms (a, b), the weight of
  (positive in a, negative in b) pairs ranked correctly, ties counting one half. Negatives of b are sorted
  by score once; a cumulative sum of their weights per replicate gives, for every positive, the weight of
  the negatives below it (two look-ups for ties). Any group's AUC is then the sum over its atom pairs
  divided by its positive x negative weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BINS = 10
"""ECE bins: 10 equal-width bins of the predicted probability on [0, 1] (the last bin includes 1)."""


@dataclass(frozen=True)
class Layout:
    """Column positions of the per-unit features for C classes."""

    n_classes: int

    @property
    def count(self) -> int:
        return 0

    def positives(self) -> slice:
        return slice(1, 1 + self.n_classes)

    def predicted(self) -> slice:
        return slice(1 + self.n_classes, 1 + 2 * self.n_classes)

    def true_positives(self) -> slice:
        return slice(1 + 2 * self.n_classes, 1 + 3 * self.n_classes)

    def calibration(self) -> slice:
        start = 1 + 3 * self.n_classes
        return slice(start, start + N_BINS * self.n_classes)

    def abs_error(self) -> slice:
        start = 1 + (3 + N_BINS) * self.n_classes
        return slice(start, start + self.n_classes)

    @property
    def correct(self) -> int:
        return 1 + (4 + N_BINS) * self.n_classes

    @property
    def width(self) -> int:
        return 2 + (4 + N_BINS) * self.n_classes


def calibration_bins(p: np.ndarray) -> np.ndarray:
    """Bin index 0..9 of each probability (equal-width bins; p = 1 falls in the last bin)."""
    return np.minimum((np.asarray(p) * N_BINS).astype(np.int64), N_BINS - 1)


def image_features(y: np.ndarray, p: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """Per-image features [n, F] (see `Layout`), float64."""
    n, classes = y.shape
    layout = Layout(classes)
    features = np.zeros((n, layout.width), dtype=np.float64)
    features[:, layout.count] = 1.0
    features[:, layout.positives()] = y
    features[:, layout.predicted()] = decisions
    features[:, layout.true_positives()] = y * decisions
    residual = p - y
    columns = layout.calibration().start + np.arange(classes)[None, :] * N_BINS + calibration_bins(p)
    features[np.arange(n)[:, None], columns] = residual
    features[:, layout.abs_error()] = np.abs(residual)
    features[:, layout.correct] = np.all(decisions == y, axis=1)
    return features


@dataclass
class AtomStats:
    """Statistics of B weightings: `sums` [B, K, F] per atom, `pairs` [B, C, K, K] Mann-Whitney sums.

    `atoms` lists the atom indices (of the GroupSet) the K positions stand for.
    """

    sums: np.ndarray
    pairs: np.ndarray
    atoms: np.ndarray
    layout: Layout


@dataclass(frozen=True)
class Units:
    """Images grouped into (patient, atom) units, and their summed features."""

    unit_of_image: np.ndarray  # [n]
    patient: np.ndarray  # [U] patient index of each unit
    atom: np.ndarray  # [U] atom of each unit
    features: np.ndarray  # [U, F]

    @classmethod
    def build(cls, patient_of_image: np.ndarray, atom_of_image: np.ndarray, features: np.ndarray) -> "Units":
        from scipy import sparse

        n = patient_of_image.size
        keys = patient_of_image.astype(np.int64) * (int(atom_of_image.max(initial=0)) + 1) + atom_of_image
        unique_keys, unit_of_image = np.unique(keys, return_inverse=True)
        unit_of_image = unit_of_image.reshape(-1)
        first = np.zeros(unique_keys.size, dtype=np.int64)
        first[unit_of_image[::-1]] = np.arange(n)[::-1]
        membership = sparse.csr_matrix((np.ones(n), (unit_of_image, np.arange(n))), shape=(unique_keys.size, n))
        summed = np.asarray(membership @ features)
        return cls(unit_of_image, patient_of_image[first], atom_of_image[first], summed)


def _mann_whitney_fixed(scores, y, atom_of_image, weights, atoms, dtype) -> np.ndarray:
    """Pair sums [B, C, K, K] when every image keeps its atom; `weights` [n, B] per image (replicates last).

    For each class and atom b, the negatives of b are sorted by score and cut at the ranks where positives
    fall (left and right of ties); one sparse product sums the replicate weights of the negatives between
    consecutive cuts, and a cumulative sum over those few segments gives, for every positive, the weight
    of the negatives of b below it (and at or below it).
    """
    n_rep = weights.shape[1]
    pairs = np.zeros((n_rep, scores.shape[1], atoms.size, atoms.size), dtype=np.float64)
    position = np.full(int(atoms.max(initial=0)) + 1, -1, dtype=np.int64)
    position[atoms] = np.arange(atoms.size)
    local_atom = position[atom_of_image]
    unweighted = n_rep == 1 and bool(np.all(weights == 1))
    for c in range(scores.shape[1]):
        positive = np.flatnonzero(y[:, c] == 1)
        if positive.size == 0:
            continue
        if unweighted:  # every weight 1: the weight below a positive is a rank
            pos_scores = scores[positive, c]
            for k in range(atoms.size):
                negative = np.sort(scores[(y[:, c] == 0) & (local_atom == k), c])
                ranked = np.searchsorted(negative, pos_scores, "left") + np.searchsorted(negative, pos_scores, "right")
                pairs[0, c, :, k] = 0.5 * np.bincount(local_atom[positive], weights=ranked, minlength=atoms.size)
        else:
            pairs[:, c] = _weighted_class_pairs(scores[:, c], y[:, c], positive, local_atom, weights, atoms.size,
                                                dtype)
    return pairs


def _weighted_class_pairs(scores, labels, positive, local_atom, weights, n_atoms: int, dtype) -> np.ndarray:
    """[B, K, K] weighted Mann-Whitney sums of one class (see `_mann_whitney_fixed`)."""
    from scipy import sparse

    pos_scores = scores[positive]
    rows, cols, blocks = [], [], []
    offset = 0
    for k in range(n_atoms):
        negative = np.flatnonzero((labels == 0) & (local_atom == k))
        if negative.size == 0:
            blocks.append(None)
            continue
        order = negative[np.argsort(scores[negative], kind="stable")]
        below = np.searchsorted(scores[order], pos_scores, side="left")
        at_or_below = np.searchsorted(scores[order], pos_scores, side="right")
        cuts = np.unique(np.concatenate([below, at_or_below]))
        ranks = np.arange(int(cuts[-1]))
        rows.append(offset + np.searchsorted(cuts, ranks, side="right"))
        cols.append(order[: ranks.size])
        blocks.append((offset, cuts, np.searchsorted(cuts, below), np.searchsorted(cuts, at_or_below)))
        offset += cuts.size
    out = np.zeros((weights.shape[1], n_atoms, n_atoms), dtype=np.float64)
    if offset == 0:
        return out
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    segments = sparse.csr_matrix((np.ones(rows.size, dtype=dtype), (rows, cols)), shape=(offset, weights.shape[0]))
    prefix = np.asarray(segments @ weights)
    pos_weights = weights[positive]
    pos_onehot = np.zeros((n_atoms, positive.size), dtype=dtype)
    pos_onehot[local_atom[positive], np.arange(positive.size)] = 1
    for k, block in enumerate(blocks):
        if block is None:
            continue
        start, cuts, low, high = block
        cumulative = np.cumsum(prefix[start:start + cuts.size], axis=0)
        ranked = cumulative[low]
        ranked += cumulative[high]
        ranked *= pos_weights
        out[:, :, k] = 0.5 * (pos_onehot @ ranked).T
    return out


def _mann_whitney_variable(scores, y, atom_images, atoms, dtype) -> np.ndarray:
    """Pair sums [B, C, K, K] when each replicate assigns its own atoms (`atom_images` [B, n]), unit weights."""
    n_rep = atom_images.shape[0]
    classes = scores.shape[1]
    pairs = np.zeros((n_rep, classes, atoms.size, atoms.size), dtype=np.float64)
    for c in range(classes):
        positive = np.flatnonzero(y[:, c] == 1)
        negative = np.flatnonzero(y[:, c] == 0)
        if positive.size == 0 or negative.size == 0:
            continue
        order = negative[np.argsort(scores[negative, c], kind="stable")]
        sorted_scores = scores[order, c]
        below = np.searchsorted(sorted_scores, scores[positive, c], side="left")
        at_or_below = np.searchsorted(sorted_scores, scores[positive, c], side="right")
        pos_atoms = atom_images[:, positive]
        neg_atoms = atom_images[:, order]
        for k, atom in enumerate(atoms):
            cumulative = np.zeros((n_rep, order.size + 1), dtype=dtype)
            np.cumsum(neg_atoms == atom, axis=1, out=cumulative[:, 1:])
            ranked = 0.5 * (cumulative[:, below] + cumulative[:, at_or_below])
            for j, other in enumerate(atoms):
                pairs[:, c, j, k] = np.sum(ranked * (pos_atoms == other), axis=1)
    return pairs


def rank_bins(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each score among `n_bins` quantile bins of the scores; equal scores always share a bin."""
    edges = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, scores, side="right")


def _row_cumsum(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 0 of [R, ...] (a row loop: faster than np.cumsum on axis 0 for wide rows)."""
    out = np.empty_like(values)
    if values.shape[0]:
        out[0] = values[0]
    for row in range(1, values.shape[0]):
        np.add(out[row - 1], values[row], out=out[row])
    return out


def _mann_whitney_binned(scores, y, columns, weights, atom_of_image, atoms, n_bins, dtype, bins_by_class=None):
    """Pair sums [B, C, K, K] with scores rounded to `n_bins` rank bins (pairs inside a bin count 1/2).

    Image i carries the weights of row `columns[i]` of `weights` [U, B] (its unit). With `atom_of_image`
    [n], images keep their atom; with `atom_of_image` None, `weights` [K, U, B] gives each atom's own
    weighting of the units (a permutation's 0/1 memberships). Cost per class: one sparse product, whose
    rows are (rank bin, label, atom), then work on bins only. `bins_by_class`: `rank_bins` of each class's
    scores when already computed.
    """
    from scipy import sparse

    n_images = scores.shape[0]
    n_units, n_rep = weights.shape[-2:]
    classes = scores.shape[1]
    pairs = np.zeros((n_rep, classes, atoms.size, atoms.size), dtype=np.float64)
    fixed = atom_of_image is not None
    if fixed:
        position = np.full(int(atoms.max(initial=0)) + 1, -1, dtype=np.int64)
        position[atoms] = np.arange(atoms.size)
        local_atom = position[atom_of_image]
    ones = np.ones(n_images, dtype=dtype)
    for c in range(classes):
        if y[:, c].min() == y[:, c].max():
            continue
        bins = bins_by_class[c] if bins_by_class is not None else rank_bins(scores[:, c], n_bins)
        width = int(bins.max()) + 1
        if fixed:
            rows = (bins * 2 + y[:, c]) * atoms.size + local_atom
            matrix = sparse.csr_matrix((ones, (rows, columns)), shape=(width * 2 * atoms.size, n_units))
            sums = np.asarray(matrix @ weights).reshape(width, 2, atoms.size, n_rep)
        else:
            matrix = sparse.csr_matrix((ones, (bins * 2 + y[:, c], columns)), shape=(width * 2, n_units))
            sums = np.stack([np.asarray(matrix @ weights[k]) for k in range(atoms.size)], axis=1)
            sums = sums.reshape(width, 2, atoms.size, n_rep)
        negatives = sums[:, 0]  # [bins, K, B]
        positives = sums[:, 1]
        below = _row_cumsum(negatives)
        below -= 0.5 * negatives  # negatives below the bin + half of those inside it
        for a in range(atoms.size):
            pairs[:, c, a, :] = np.einsum("qb,qkb->bk", positives[:, a], below)
    return pairs


def fixed_atom_stats(units: Units, unit_weights: np.ndarray, *, scores, y, atom_of_image, dtype=np.float64,
                     auc_bins: int | None = None, bins_by_class=None) -> AtomStats:
    """Statistics for B weightings of the units, `unit_weights` [U, B] (replicates last); images keep their atom.

    `auc_bins` None: exact AUC sums; an int: scores rounded to that many rank bins (much faster).
    """
    weights_t = np.ascontiguousarray(unit_weights, dtype=dtype)
    atoms = np.unique(units.atom)
    sums = np.zeros((weights_t.shape[1], atoms.size, units.features.shape[1]), dtype=np.float64)
    features = units.features.astype(dtype)
    for k, atom in enumerate(atoms):
        members = np.flatnonzero(units.atom == atom)
        sums[:, k, :] = (features[members].T @ weights_t[members]).T
    if auc_bins is None:
        pairs = _mann_whitney_fixed(scores, y, atom_of_image, weights_t[units.unit_of_image], atoms, dtype)
    else:
        pairs = _mann_whitney_binned(scores, y, units.unit_of_image, weights_t, atom_of_image, atoms, auc_bins,
                                     dtype, bins_by_class)
    return AtomStats(sums, pairs, atoms, Layout(y.shape[1]))


def variable_atom_stats(units: Units, unit_atoms: np.ndarray, *, scores, y, dtype=np.float64,
                        auc_bins: int | None = None, bins_by_class=None) -> AtomStats:
    """Statistics for B re-assignments of units to atoms [B, U] (permutations), every unit weighted 1."""
    unit_atoms = np.asarray(unit_atoms)
    atoms = np.unique(unit_atoms)
    features = units.features.astype(dtype)
    sums = np.zeros((unit_atoms.shape[0], atoms.size, units.features.shape[1]), dtype=np.float64)
    for k, atom in enumerate(atoms):
        sums[:, k, :] = (unit_atoms == atom).astype(dtype) @ features
    if auc_bins is None:
        pairs = _mann_whitney_variable(scores, y, unit_atoms[:, units.unit_of_image], atoms, dtype)
    else:
        memberships = np.stack([np.ascontiguousarray((unit_atoms == atom).T, dtype=dtype) for atom in atoms])
        pairs = _mann_whitney_binned(scores, y, units.unit_of_image, memberships, None, atoms, auc_bins, dtype,
                                     bins_by_class)
    return AtomStats(sums, pairs, atoms, Layout(y.shape[1]))
