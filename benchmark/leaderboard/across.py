"""Across several blocks (tasks or datasets): the Friedman test over the configurations' ranks and the
Nemenyi critical difference (Demsar, JMLR 2006; as MEDFAIR ranks its methods).

A configuration is a run's configuration without the fields that name the task or dataset
(`repeats.configuration(across_blocks=True)`), so the same encoder and method can be followed from block to
block. In each block it gets the mean leaderboard position of its runs (its seeds; chance-gated runs sit
below the ranked ones, as in the table), and those positions are ranked within the block (1 = best, ties
share the mean rank). Only configurations present in every block take part (the others are named).
Friedman: scipy.stats.friedmanchisquare; pairwise Nemenyi p-values: scikit-posthocs; critical difference
CD = q_alpha(k, inf) / sqrt(2) x sqrt(k (k + 1) / (6 N)) for k configurations and N blocks: two mean ranks
further apart than CD differ at level alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.core.identity import digest
from benchmark.leaderboard.repeats import configuration, configuration_label

NOTE_TOO_FEW = ("ranks across blocks need at least 2 blocks and 3 configurations present in every block; "
                "here {blocks} block(s) and {configs} configuration(s)")


@dataclass
class AcrossBlocks:
    blocks: list
    configurations: list
    ranks: np.ndarray  # [N blocks, k configurations], 1 = best
    alpha: float = 0.05
    statistic: float | None = None
    p_value: float | None = None
    critical_difference: float | None = None
    pairwise: dict = field(default_factory=dict)
    left_out: list = field(default_factory=list)
    note: str = ""

    @property
    def mean_rank(self) -> np.ndarray:
        return self.ranks.mean(axis=0) if self.ranks.size else np.zeros(0)


def _positions(board) -> dict:
    """configuration key -> (label, mean position of its runs on this board)."""
    found: dict[str, list] = {}
    for position, entry in enumerate(board.entries, start=1):
        key = digest(configuration(entry.run, across_blocks=True))
        found.setdefault(key, [configuration_label(entry.run), []])[1].append(position)
    return {key: (label, float(np.mean(places))) for key, (label, places) in found.items()}


def across_blocks(boards, *, alpha: float = 0.05) -> AcrossBlocks:
    """Friedman test and Nemenyi critical difference over the boards (one per block)."""
    from scipy.stats import friedmanchisquare, rankdata, studentized_range

    per_board = [_positions(board) for board in boards]
    keys = [key for key in per_board[0] if all(key in found for found in per_board)] if per_board else []
    every = {key: found[key][0] for found in per_board for key in found}
    left_out = sorted({label for key, label in every.items() if key not in keys})
    labels = [per_board[0][key][0] for key in keys]
    labels = [f"{label} [{key[:6]}]" if labels.count(label) > 1 else label for label, key in zip(labels, keys)]
    positions = np.array([[found[key][1] for key in keys] for found in per_board]).reshape(len(boards), len(keys))
    ranks = np.vstack([rankdata(row) for row in positions]) if keys else positions
    result = AcrossBlocks([b.block for b in boards], labels, ranks, alpha=alpha, left_out=left_out)
    n_blocks, k = ranks.shape
    if n_blocks < 2 or k < 3:
        result.note = NOTE_TOO_FEW.format(blocks=n_blocks, configs=k)
        return result
    test = friedmanchisquare(*ranks.T)
    result.statistic, result.p_value = float(test.statistic), float(test.pvalue)
    q = studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    result.critical_difference = float(q * np.sqrt(k * (k + 1) / (6 * n_blocks)))
    result.pairwise = _nemenyi(ranks, labels)
    return result


def _nemenyi(ranks: np.ndarray, labels: list) -> dict:
    """label -> label -> pairwise Nemenyi p-value (scikit-posthocs, on the within-block ranks)."""
    import scikit_posthocs

    table = np.asarray(scikit_posthocs.posthoc_nemenyi_friedman(ranks))
    return {a: {b: float(table[i, j]) for j, b in enumerate(labels) if j != i} for i, a in enumerate(labels)}
