"""How one figure, rank or run is written in a table cell (terminal, markdown)."""

from __future__ import annotations

import numpy as np

from fairness.registry import figure_spec, is_known

DIGITS = {"squared": 4}
"""Decimals per figure units (squared errors are small numbers); 3 otherwise."""


def digits(name: str) -> int:
    return DIGITS.get(figure_spec(name)[0].units, 3) if is_known(name) else 3


def _short(value: float, places: int) -> str:
    """0.123 -> ".123", -0.045 -> "-.045" (for narrow terminal columns)."""
    text = f"{value:.{places}f}"
    return text.replace("0.", ".", 1) if abs(value) < 1 else text


def format_figure(figure, *, alpha: float = 0.05, compact: bool = False, name: str = "") -> str:
    """ "value [lo, hi]" plus " *" when significant after correction, " †" when a gap is below its minimum
    detectable effect, " !" when flagged. `compact`: the CI on a second line, without leading zeros."""
    if figure is None or not np.isfinite(figure.value):
        return "n/a"
    places = digits(name) if name else 3
    text = f"{figure.value:.{places}f}"
    if np.isfinite(figure.ci[0]) and compact:
        text += f"\n[{_short(figure.ci[0], places)},{_short(figure.ci[1], places)}]"
    elif np.isfinite(figure.ci[0]):
        text += f" [{figure.ci[0]:.{places}f}, {figure.ci[1]:.{places}f}]"
    if figure.p_adj is not None and figure.p_adj < alpha:
        text += " *"
    if figure.below_mde:
        text += " †"
    if figure.flag:
        text += " !"
    return text


def rank_cell(entry) -> str:
    return str(entry.rank) if entry.rank is not None else "chance"


def first_cell(entry) -> str:
    return "" if entry.p_first is None else f"{entry.p_first:.2f}"


def interval_cell(entry) -> str:
    return "" if entry.rank_interval is None else f"{entry.rank_interval[0]}-{entry.rank_interval[1]}"


def pareto_cell(entry) -> str:
    return "◆" if entry.pareto else ""


def short_label(run, *, shifted: bool = False) -> str:
    """A name that fits a terminal: outside files keep their NAME, workdir runs show encoder and method, and a run
    tested on another dataset `TRAIN->TEST`; `shifted` (the board holds such runs): in-distribution runs show
    `DATASET->DATASET` too."""
    if run.method == "external" or not run.encoder:
        return run.name
    seed = f" s{run.seed}" if run.seed is not None else ""
    return f"{encoder_label(run)} {run.method}{dataset_shift(run.record, shifted=shifted)}{seed} ({run.name[-8:]})"


def dataset_shift(record, *, shifted: bool = False) -> str:
    """" TRAIN->TEST" for a run tested on another dataset (and with `shifted`, for one tested on its own)."""
    test = getattr(record, "test_dataset", None) or (record.dataset if shifted else None)
    return f" {record.dataset}->{test}" if test and record.dataset else ""


def any_shifted(runs) -> bool:
    """Whether some of the runs were tested on a dataset other than the one they were fitted on."""
    return any(getattr(run.record, "test_dataset", None) for run in runs)


def encoder_label(run) -> str:
    """The encoder, and for an ensemble of checkpoints how many members its probabilities average."""
    members = getattr(run.record, "ensemble", None)
    return f"{run.encoder} ensemble of {len(members)}" if members else run.encoder


def mean_sd(summary: dict | None, places: int) -> str:
    if summary is None:
        return "n/a"
    sd = summary["sd"]
    return f"{summary['mean']:.{places}f} ± {sd:.{places}f}" if np.isfinite(sd) else f"{summary['mean']:.{places}f}"


def values_cell(summary: dict | None, places: int) -> str:
    if summary is None:
        return ""
    return ", ".join(f"s{seed}: {value:.{places}f}" if np.isfinite(value) else f"s{seed}: n/a"
                     for seed, value in zip(summary["seeds"], summary["values"]))


def p_cell(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"
