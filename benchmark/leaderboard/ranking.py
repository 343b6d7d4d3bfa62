"""Ranking a table of runs: the chance gate, the order, rank uncertainty, the Pareto front and DTO.

- Order: by the ranking figure in the direction the figures table gives, ties broken by the task's overall
  utility (`utility`: macro AUC, or balanced accuracy for single-label tasks); undefined values last.
- Chance gate: a run whose overall-utility CI includes chance (AUC 0.5; balanced accuracy 1/K) is not
  ranked: it is listed below the ranked runs (ordered by utility) and marked. Without bootstrap replicates
  the point value decides. So a run that predicts one class for every image can never come first, however
  small its gaps (levelling down: Zhang et al., CHIL 2022; Mittelstadt et al. 2023).
- Rank uncertainty: the runs share their bootstrap draws (paired replicates when they share a test set), so
  each replicate ranks the ranked runs again; P(rank = 1) is the share of replicates where a run comes
  first, its 95% rank interval the 2.5% and 97.5% quantiles of its ranks.
- Pareto front of (utility, worst_group_utility): the runs no other run beats on both.
- DTO (MEDFAIR, Zong et al., ICLR 2023, after Han et al.): per group g of the worst-group cells, the run's
  utility divided by the best utility of any run in the table (the utopia point), then the Euclidean
  distance of that vector to all ones. Lower is better; it depends on the table's runs.
"""

from __future__ import annotations

import numpy as np

from fairness import Figure
from fairness.registry import sort_key
from fairness.resampling import percentile_interval

UTILITY = "utility"
WORST = "worst_group_utility"


def chance_level(report) -> float:
    """The utility of a predictor without skill: AUC 0.5, or balanced accuracy 1/K for single-label tasks."""
    return 1.0 / len(report.classes) if report.kind == "single" else 0.5


def below_chance(report) -> bool:
    """Whether the overall utility's CI (or, without one, its value) includes the chance level."""
    figure = report.figures.get(UTILITY)
    if figure is None or not np.isfinite(figure.value):
        return True
    chance = chance_level(report)
    low = figure.ci[0]
    return bool((low if np.isfinite(low) else figure.value) <= chance + 1e-12)


def _key(name: str, values) -> np.ndarray:
    """Sort keys (smaller first) for values of figure `name`; undefined values last."""
    values = np.asarray(values, dtype=np.float64)
    keys = np.asarray(sort_key(name, values), dtype=np.float64)
    return np.where(np.isfinite(keys), keys, np.inf)


def order(entries, rank_by: str) -> list:
    """Ranked runs first (by `rank_by`, ties by utility), then the runs below the chance gate (by utility)."""
    ranked = [e for e in entries if not e.chance]
    gated = [e for e in entries if e.chance]

    def by_figure(entry):
        return (float(_key(rank_by, entry.value(rank_by))), float(_key(UTILITY, entry.value(UTILITY))))

    def by_utility(entry):
        return (float(_key(UTILITY, entry.value(UTILITY))), float(_key(rank_by, entry.value(rank_by))))

    return sorted(ranked, key=by_figure) + sorted(gated, key=by_utility)


def rank_uncertainty(ranked, rank_by: str, confidence: float = 0.95) -> None:
    """Set `p_first` and `rank_interval` of the ranked entries from their bootstrap replicates."""
    replicates = [(e.replicates(rank_by), e.replicates(UTILITY)) for e in ranked]
    if not ranked or any(r is None or u is None for r, u in replicates):
        return
    width = min(r.size for r, _ in replicates)
    primary = np.stack([_key(rank_by, r[:width]) for r, _ in replicates])
    secondary = np.stack([_key(UTILITY, u[:width]) for _, u in replicates])
    positions = np.lexsort((secondary, primary), axis=0)  # [R, B]: run at each position, per replicate
    ranks = np.empty_like(positions)
    np.put_along_axis(ranks, positions, np.arange(len(ranked))[:, None].repeat(width, axis=1), axis=0)
    alpha = (1.0 - confidence) / 2.0
    for entry, row in zip(ranked, ranks):
        entry.p_first = float(np.mean(row == 0))
        entry.rank_interval = (int(np.quantile(row, alpha, method="lower")) + 1,
                               int(np.quantile(row, 1.0 - alpha, method="higher")) + 1)


def pareto_front(entries) -> None:
    """Mark the entries no other entry beats on both utility and worst-group utility (`pareto`)."""
    points = np.array([[e.value(UTILITY), e.value(WORST)] for e in entries], dtype=np.float64).reshape(-1, 2)
    for i, entry in enumerate(entries):
        if not np.all(np.isfinite(points[i])):
            entry.pareto = False
            continue
        others = np.delete(points, i, axis=0)
        dominated = np.any(np.all(others >= points[i], axis=1) & np.any(others > points[i], axis=1))
        entry.pareto = not bool(dominated)


def _cell_utilities(report) -> dict:
    """(attribute, level) -> the group-utility Figure of the worst-group cells."""
    cells = set(report.options.get("worst_group_over") or ())
    return {(row.attribute, row.level): row.metrics["utility"] for row in report.groups if row.attribute in cells}


def add_dto(entries, confidence: float = 0.95) -> list[str]:
    """Put the `dto` figure (with its bootstrap CI) into every entry's report; returns notes."""
    if not entries:
        return []
    per_run = [_cell_utilities(e.report) for e in entries]
    keys = [key for key in per_run[0] if all(key in cells for cells in per_run)]
    keys = [key for key in keys if all(np.isfinite(cells[key].value) for cells in per_run)]
    if not keys:
        return ["dto: no worst-group cell has a defined utility in every run; dto is left out"]
    values = np.array([[cells[key].value for key in keys] for cells in per_run])
    for entry, distance in zip(entries, _distance(values)):
        entry.report.figures["dto"] = Figure(value=float(distance), ci=(float("nan"), float("nan")))
    stacks = [[cells[key].replicates for key in keys] for cells in per_run]
    if all(r is not None for stack in stacks for r in stack):
        width = min(r.size for stack in stacks for r in stack)
        replicates = np.array([[r[:width] for r in stack] for stack in stacks])  # [R, G, B]
        distances = _distance(replicates)
        for entry, row in zip(entries, distances):
            figure = entry.report.figures["dto"]
            figure.replicates = row
            figure.ci = percentile_interval(row, confidence=confidence)
    dropped = len(per_run[0]) - len(keys)
    return [f"dto: {dropped} cell(s) without a defined utility in every run left out"] if dropped else []


def _distance(values: np.ndarray) -> np.ndarray:
    """MEDFAIR's DTO of [R, G, ...] utilities: sqrt(sum_g (u / max_runs u - 1)^2)."""
    utopia = np.max(np.where(np.isfinite(values), values, -np.inf), axis=0, keepdims=True)
    utopia = np.where(utopia > 0, utopia, np.nan)  # a cell no run has a utility for is left out (nansum)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = values / utopia
    return np.sqrt(np.nansum((normalised - 1.0) ** 2, axis=1))
