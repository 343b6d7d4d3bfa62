"""Figure 5, reliability diagrams and ROC curves per group for one run (the best-placed, or --curves-run).

Top row, per attribute: the reliability diagram of each group (mean predicted probability against the share
that is right, 10 equal-mass bins of the `ece` figure's calibration channels: the top label for a single-label
task, every class pooled for a multi-label one), the legend giving each group's `ece` (the debiased squared l2
calibration error, Kumar et al. 2019, 10 equal-mass bins) with its CI. Bottom row: each group's macro-average
ROC curve, the legend giving its macro AUC with CI (the leaderboard's). Grey: the whole test set."""

from __future__ import annotations

from benchmark.report.figures import common
from benchmark.report.style import GREY, new_figure, series_look

MAX_ATTRIBUTES = 3


def needs(data, options) -> str | None:
    curves = data.curves
    if not curves or not curves.get("groups"):
        return "no curves were collected for this report"
    return None


def _attributes(curves) -> list[str]:
    """The attributes drawn (at most MAX_ATTRIBUTES); without groups, the whole test set alone."""
    found = list(dict.fromkeys(g["attribute"] for g in curves["groups"] if g["attribute"] != "overall"))
    return found[:MAX_ATTRIBUTES] or ["overall"]


def _by(attribute: str) -> str:
    return "(all test images; no groups)" if attribute == "overall" else f"by {attribute.replace('_', '×')}"


def _estimate_text(run, attribute: str, level: str, metric: str, places: int) -> str:
    estimate = run.groups.get(attribute, {}).get(level, {}).get("metrics", {}).get(metric)
    if estimate is None or not estimate.defined:
        return "n/a"
    ci = f" [{estimate.low:.{places}f}, {estimate.high:.{places}f}]" if estimate.has_ci else ""
    return f"{estimate.value:.{places}f}{ci}"


def draw(data, options):
    curves = data.curves
    run = data.run(curves["run"])
    attributes = _attributes(curves)
    figure = new_figure(max(4.4, 2.7 * len(attributes) + 0.4), 5.8)
    axes = figure.subplots(2, len(attributes), squeeze=False)
    overall = next((g for g in curves["groups"] if g["attribute"] == "overall"), None)
    overall = None if attributes == ["overall"] else overall  # drawn as the one group, not as the grey reference
    for column, attribute in enumerate(attributes):
        groups = [g for g in curves["groups"] if g["attribute"] == attribute]
        _reliability(axes[0][column], run, attribute, groups, overall, curves)
        _roc(axes[1][column], run, attribute, groups, overall, curves)
    figure.suptitle(f"{run.label}: calibration and ROC per group", fontsize=9)
    return figure


def _reliability(ax, run, attribute, groups, overall, curves) -> None:
    ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1.0, label="perfect calibration")
    if overall:
        ax.plot(overall["reliability"]["score"], overall["reliability"]["observed"], color=GREY, linewidth=1.0,
                label="all")
    for index, group in enumerate(groups):
        look = series_look(index)
        ece = _estimate_text(run, attribute, group["level"], "ece", 4)
        line, = ax.plot(group["reliability"]["score"], group["reliability"]["observed"], color=look.colour,
                        linestyle=look.line, marker=look.marker, ms=3.5, linewidth=1.2,
                        label=f"{group['level']} (n={group['count']}) ECE {ece}")
        line.set_gid(f"reliability-{common.slug(attribute)}-{common.slug(group['level'])}")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"mean predicted probability ({curves['channels']})",
           ylabel="observed frequency (share right)")
    ax.set_title(f"reliability {_by(attribute)}", fontsize=8.5)
    ax.legend(loc="upper left", fontsize=6.5, frameon=True, framealpha=0.85, edgecolor="none")


def _roc(ax, run, attribute, groups, overall, curves) -> None:
    fpr = curves["fpr"]
    ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1.0, label="chance")
    if overall and overall["roc"]:
        ax.plot(fpr, overall["roc"], color=GREY, linewidth=1.0, label="all")
    for index, group in enumerate(groups):
        if not group["roc"]:
            continue
        look = series_look(index)
        auc = _estimate_text(run, attribute, group["level"], "auc", 3)
        line, = ax.plot(fpr, group["roc"], color=look.colour, linestyle=look.line, linewidth=1.3,
                        label=f"{group['level']}: AUC {auc}")
        line.set_gid(f"roc-{common.slug(attribute)}-{common.slug(group['level'])}")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (0–1)", ylabel="true positive rate (0–1)")
    ax.set_title(f"macro-average ROC {_by(attribute)}", fontsize=8.5)
    ax.legend(loc="lower right", fontsize=6.5, frameon=True, framealpha=0.85, edgecolor="none")


def caption(data, options) -> str:
    curves = data.curves or {}
    run = data.run(curves["run"]).label if curves.get("run") else ""
    return (f"Run {run} ({curves.get('run')}). Top: reliability diagrams per group (10 equal-mass bins of the calibration "
            f"channels: {curves.get('channels')}); the legend gives each group's ECE, the debiased squared l2 "
            f"calibration error over 10 equal-mass bins (the `ece` figure), with its 95% CI. Bottom: macro-average "
            f"ROC curves per group (mean over classes of the one-vs-rest TPR at each FPR), with the group's macro "
            f"AUC and 95% CI. Grey: the whole test set; dotted: perfect calibration / chance.")
