"""AUC sums for many weightings at once: weighted Mann-Whitney pair sums per class and pair of atoms.

For each class and each pair of atoms (a, b): the weight of (positive in a, negative in b) pairs ranked
correctly, ties counting one half. Negatives of b are sorted by score once; a cumulative sum of their weights
per replicate gives, for every positive, the weight of the negatives below it (two look-ups for ties). Any
group's AUC is then the sum over its atom pairs divided by its positive x negative weight.

`multipliers` (optional, default 1): a fixed weight of each image per class (the prevalence reweighting of
`fairness.reweight`), multiplied into every replicate's weights: [n, C] when images keep their atom, one
[n, C] per atom position (the weights an image would have in that atom) when replicates move images.
"""

from __future__ import annotations

import numpy as np


def mann_whitney_fixed(scores, y, atom_of_image, weights, atoms, dtype, multipliers=None) -> np.ndarray:
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
    unweighted = n_rep == 1 and bool(np.all(weights == 1)) and multipliers is None
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
            class_weights = weights if multipliers is None else weights * multipliers[:, c, None]
            pairs[:, c] = _weighted_class_pairs(scores[:, c], y[:, c], positive, local_atom, class_weights, atoms.size,
                                                dtype)
    return pairs


def _weighted_class_pairs(scores, labels, positive, local_atom, weights, n_atoms: int, dtype) -> np.ndarray:
    """[B, K, K] weighted Mann-Whitney sums of one class (see `mann_whitney_fixed`)."""
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


def mann_whitney_variable(scores, y, atom_images, atoms, dtype, multipliers=None) -> np.ndarray:
    """Pair sums [B, C, K, K] when each replicate assigns its own atoms (`atom_images` [B, n]); weights 1, or
    `multipliers[k][i, c]` for image i in atom position k."""
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
            in_atom = (neg_atoms == atom) * (1.0 if multipliers is None else multipliers[k][order, c])
            np.cumsum(in_atom, axis=1, out=cumulative[:, 1:])
            ranked = 0.5 * (cumulative[:, below] + cumulative[:, at_or_below])
            for j, other in enumerate(atoms):
                weight = 1.0 if multipliers is None else multipliers[j][positive, c]
                pairs[:, c, j, k] = np.sum(ranked * (pos_atoms == other) * weight, axis=1)
    return pairs


def rank_bins(scores: np.ndarray, n_bins: int, known: np.ndarray | None = None) -> np.ndarray:
    """Bin of each score among `n_bins` quantile bins of the scores (of the `known` ones only, when given: a
    masked entry does not move the cuts); equal scores always share a bin."""
    chosen = scores if known is None or not known.any() else scores[known]
    edges = np.unique(np.quantile(chosen, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, scores, side="right")


def _row_cumsum(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 0 of [R, ...] (a row loop: faster than np.cumsum on axis 0 for wide rows)."""
    out = np.empty_like(values)
    if values.shape[0]:
        out[0] = values[0]
    for row in range(1, values.shape[0]):
        np.add(out[row - 1], values[row], out=out[row])
    return out


def _variable_matrix(ones, multipliers, k: int, c: int, rows, columns, width: int, n_units: int, dtype):
    """Sparse [(bin, label), unit] sums of images for atom position k (weights 1, or atom k's multipliers)."""
    from scipy import sparse

    data = ones if multipliers is None else multipliers[k][:, c].astype(dtype)
    return sparse.csr_matrix((data, (rows, columns)), shape=(width * 2, n_units))


def mann_whitney_binned(scores, y, columns, weights, atom_of_image, atoms, n_bins, dtype, bins_by_class=None,
                        multipliers=None):
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
            data = ones if multipliers is None else multipliers[:, c].astype(dtype)
            rows = (bins * 2 + y[:, c]) * atoms.size + local_atom
            matrix = sparse.csr_matrix((data, (rows, columns)), shape=(width * 2 * atoms.size, n_units))
            sums = np.asarray(matrix @ weights).reshape(width, 2, atoms.size, n_rep)
        else:
            rows = bins * 2 + y[:, c]
            shared = None if multipliers else _variable_matrix(ones, None, 0, c, rows, columns, width, n_units, dtype)
            sums = np.stack([np.asarray((shared if shared is not None else _variable_matrix(
                ones, multipliers, k, c, rows, columns, width, n_units, dtype)) @ weights[k])
                for k in range(atoms.size)], axis=1)
            sums = sums.reshape(width, 2, atoms.size, n_rep)
        negatives = sums[:, 0]  # [bins, K, B]
        positives = sums[:, 1]
        below = _row_cumsum(negatives)
        below -= 0.5 * negatives  # negatives below the bin + half of those inside it
        for a in range(atoms.size):
            pairs[:, c, a, :] = np.einsum("qb,qkb->bk", positives[:, a], below)
    return pairs
