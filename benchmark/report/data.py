"""The report's data: what the leaderboard's one evaluation says, as plain JSON, and typed views of it.

`collect(board, ...)` takes a built `benchmark.leaderboard.Leaderboard` (every figure, CI, p-value, rank,
rank interval, P(rank 1), Pareto flag and repeat group already computed there, once) and returns a JSON
document: the leaderboard's own JSON (`benchmark.leaderboard.to_json`), the per-class figures of every run
(with a bootstrap Wald p-value for the two-group differences, from the same replicates), the curves of one run
(`benchmark.report.curves`), the ranking's reason and the provenance. Nothing is resampled here. The plan's
leaderboard job writes this document beside its table, so the report job draws without evaluating again.

`ReportData.from_json(document)` gives the figures and tables typed views (`RunView`, `Estimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DATA_VERSION = 1
DIFF_PREFIXES = ("f1_diff_", "auc_diff_")
"""Per-class differences over the groups of an attribute (signed with two groups) that get a bootstrap p."""
REASONS = {
    "worst_group_utility": (
        "Ranked by worst-group utility: the task's utility (balanced accuracy for single-label tasks, macro AUC "
        "otherwise) in the worst-served sex x age cell, ties broken by overall utility. A small gap can come from "
        "making every group worse (levelling down); the worst group's utility rises only when that group is served "
        "better (MEDFAIR; Zhang et al., CHIL 2022). Runs whose overall-utility CI includes chance are not ranked. "
        "Why, in full: docs/FAIRNESS.md."),
}
REASON_OTHER = "Ranked by {name} ({better} is better), ties by overall utility, as asked with --rank-by."


def ranking_sentence(rank_by: str) -> str:
    """One sentence: the ranking figure, its direction, the tie-break."""
    from fairness.registry import figure_spec, is_known

    better = figure_spec(rank_by)[0].better if is_known(rank_by) else "higher"
    better = "nearest 0" if better == "zero" else better
    return f"Ranked by {rank_by} ({better} is better), ties by overall utility."


def ranking_reason(rank_by: str) -> str:
    from fairness.registry import figure_spec, is_known

    if rank_by in REASONS:
        return REASONS[rank_by]
    better = figure_spec(rank_by)[0].better if is_known(rank_by) else "higher"
    better = "nearest 0" if better == "zero" else better
    return REASON_OTHER.format(name=rank_by, better=better)


def _two_level_attributes(report) -> set[str]:
    levels: dict[str, int] = {}
    for row in report.groups:
        levels[row.attribute] = levels.get(row.attribute, 0) + 1
    return {attribute for attribute, count in levels.items() if count == 2}


def wald_p_value(value: float, replicates) -> float | None:
    """Two-sided p of "difference = 0" from the bootstrap standard error (z = value / SE, normal tails); unlike
    counting replicates beyond 0 it is not bounded below by 1 / B, so it survives a Holm correction over many
    cells. None without replicates or spread."""
    if replicates is None or not math.isfinite(value):
        return None
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2:
        return None
    se = float(np.std(finite, ddof=1))
    if not se > 0:
        return None
    return math.erfc(abs(value) / se / math.sqrt(2.0))


def per_class(report) -> dict:
    """name -> class -> {"value", "ci", "p"}: the run's per-class figures; `p` the two-sided bootstrap (Wald)
    p of a signed two-group difference (`DIFF_PREFIXES`), None for every other figure."""
    two_levels = _two_level_attributes(report)
    out = {}
    for name, figures in report.by_class.items():
        tested = name.startswith(DIFF_PREFIXES) and name.split("_diff_", 1)[1] in two_levels
        out[name] = {}
        for cls, figure in figures.items():
            entry = figure.as_dict()
            entry["p"] = wald_p_value(figure.value, figure.replicates) if tested else None
            out[name][cls] = {key: entry[key] for key in ("value", "ci", "p")}
    return out


def collect(board, *, curves_run: str | None = None, provenance: dict | None = None, command: str = "",
            alpha: float = 0.05, title: str = "", tradeoffs: dict | None = None, probes: dict | None = None) -> dict:
    """The report's data document from a built leaderboard (see the module docstring). `curves_run`: the run
    whose ROC and reliability curves are drawn (default: the first ranked run, else the first run);
    `tradeoffs`, `probes`: the sections `mitigation_sections` makes (absent: none)."""
    from benchmark.leaderboard import to_json
    from benchmark.report.curves import run_curves

    entries = list(board.entries)
    chosen = board.entry(curves_run) if curves_run else (board.ranked or entries)[0]
    return {
        "version": DATA_VERSION,
        "title": title or f"cxr-fairbench report: {board.block or 'outside predictions'}",
        "block": board.block,
        "command": command,
        "alpha": alpha,
        "reason": ranking_reason(board.rank_by),
        "leaderboard": to_json([board]),
        "classes": list(entries[0].report.classes),
        "kind": entries[0].report.kind,
        "by_class": {entry.run.name: per_class(entry.report) for entry in entries},
        "curves": run_curves(chosen),
        "provenance": provenance or {},
        "tradeoffs": tradeoffs or {"comparisons": [], "notes": []},
        "probes": probes or {"attributes": [], "encoders": []},
    }


@dataclass(frozen=True)
class Estimate:
    """A value with its CI (NaN where undefined), adjusted p (figures) or bootstrap p (per-class diffs)."""

    value: float
    low: float = math.nan
    high: float = math.nan
    p_adj: float | None = None
    p: float | None = None

    @classmethod
    def of(cls, values: dict | None) -> "Estimate":
        if not values:
            return cls(math.nan)
        ci = values.get("ci") or [None, None]
        return cls(_number(values.get("value")), _number(ci[0]), _number(ci[1]), values.get("p_adj"), values.get("p"))

    @property
    def defined(self) -> bool:
        return math.isfinite(self.value)

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def _number(value) -> float:
    return math.nan if value is None else float(value)


@dataclass
class RunView:
    """One run of the report, in the leaderboard's order."""

    name: str
    encoder: str
    method: str
    seed: int | None
    position: int
    rank: int | None
    below_chance: bool
    pareto: bool
    p_first: float | None
    rank_interval: tuple[int, int] | None
    n_test: int
    figures: dict = field(default_factory=dict)  # name -> Estimate
    groups: dict = field(default_factory=dict)  # attribute -> level -> {"count", "metrics": name -> Estimate}
    by_class: dict = field(default_factory=dict)  # name -> class -> Estimate
    label: str = ""
    dataset: str | None = None  # fitted on
    test_dataset: str | None = None  # tested on (the leaderboard's JSON: the same as `dataset` in distribution)

    def figure(self, name: str) -> Estimate:
        return self.figures.get(name) or Estimate(math.nan)

    @property
    def family(self) -> str:
        """What a figure colours by: the encoder, or for an outside file its NAME (without @SEED)."""
        if self.method == "external" or not self.encoder or self.encoder == "external":
            return self.name.partition("@")[0]
        return self.encoder

    @classmethod
    def of(cls, run: dict, by_class: dict) -> "RunView":
        groups = {attribute: {level: {"count": row["count"],
                                      "metrics": {k: Estimate.of(v) for k, v in row["metrics"].items()}}
                              for level, row in levels.items()}
                  for attribute, levels in run["groups"].items()}
        interval = run.get("rank_interval")
        return cls(name=run["name"], encoder=run["encoder"], method=run["method"], seed=run["seed"],
                   position=run["position"], rank=run["rank"], below_chance=run["below_chance"], pareto=run["pareto"],
                   p_first=run["p_first"], rank_interval=tuple(interval) if interval else None, n_test=run["n_test"],
                   figures={name: Estimate.of(values) for name, values in run["figures"].items()}, groups=groups,
                   by_class={name: {cls_: Estimate.of(v) for cls_, v in per.items()} for name, per in by_class.items()},
                   dataset=run.get("dataset"), test_dataset=run.get("test_dataset"))


def run_labels(runs) -> list[str]:
    """Short labels for figures: "encoder method sSEED" (outside files: their name), with "TRAIN->TEST" on every run
    when some were tested on another dataset; made unique with the end of the run name where two runs would share
    one."""
    shifted = any(run.test_dataset and run.dataset and run.test_dataset != run.dataset for run in runs)

    def base(run) -> str:
        if run.method == "external" or not run.encoder:
            return run.name
        shift = f" {run.dataset}->{run.test_dataset}" if shifted and run.dataset and run.test_dataset else ""
        return f"{run.encoder} {run.method}{shift}" + (f" s{run.seed}" if run.seed is not None else "")

    labels = [base(run) for run in runs]
    return [label if labels.count(label) == 1 else f"{label} ({run.name[-6:]})" for label, run in zip(labels, runs)]


@dataclass
class ReportData:
    """Typed access to a report data document (`collect`)."""

    document: dict
    runs: list

    @classmethod
    def from_json(cls, document: dict) -> "ReportData":
        from benchmark.core.errors import BenchError

        if document.get("version") != DATA_VERSION:
            raise BenchError(f"report data version {document.get('version')!r} is not {DATA_VERSION}; make it "
                             "again with this version (bench report, or bench run for an experiment)")
        by_class = document.get("by_class", {})
        runs = [RunView.of(run, by_class.get(run["name"], {})) for run in document["leaderboard"]["runs"]]
        for run, label in zip(runs, run_labels(runs)):
            run.label = label
        return cls(document, runs)

    ranking = property(lambda self: self.document["leaderboard"]["ranking"])
    rank_by = property(lambda self: self.ranking["rank_by"])
    repeats = property(lambda self: self.document["leaderboard"].get("repeats", []))
    notes = property(lambda self: self.document["leaderboard"].get("notes", []))
    definitions = property(lambda self: self.document["leaderboard"].get("figures", {}))
    classes = property(lambda self: self.document["classes"])
    kind = property(lambda self: self.document["kind"])
    curves = property(lambda self: self.document.get("curves"))
    provenance = property(lambda self: self.document.get("provenance", {}))
    alpha = property(lambda self: self.document.get("alpha", 0.05))
    tradeoffs = property(lambda self: self.document.get("tradeoffs") or {"comparisons": [], "notes": []})
    probes = property(lambda self: self.document.get("probes") or {"attributes": [], "encoders": []})

    @property
    def chance(self) -> float:
        """The utility of a predictor without skill (balanced accuracy 1/K, or AUC 0.5)."""
        return 1.0 / len(self.classes) if self.kind == "single" else 0.5

    @property
    def utility_name(self) -> str:
        return "balanced accuracy" if self.kind == "single" else "macro AUC"

    def run(self, name: str) -> RunView:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(name)

    @property
    def ranked(self) -> list:
        return [run for run in self.runs if run.rank is not None]

    def attributes(self) -> list[str]:
        """The group attributes of the runs, in the leaderboard's order (sex, age, sex_age, ...)."""
        seen: dict[str, None] = {}
        for run in self.runs:
            for attribute in run.groups:
                if attribute != "overall":
                    seen.setdefault(attribute)
        return list(seen)


METHOD_ORDER = ("zeroshot", "seed-linear", "linear", "mlp", "lora", "full")
"""The method progression (zero-shot -> linear probes -> MLP -> LoRA -> full fine-tuning); methods not named
here (mitigation heads, outside files) follow in alphabetical order."""


def method_key(method: str) -> tuple:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def ordered_methods(runs) -> list[str]:
    return sorted({run.method for run in runs}, key=method_key)


def ordered_encoders(runs) -> list[str]:
    """Encoders (outside files: their names) in the order of their best-placed run."""
    return list(dict.fromkeys(run.family for run in runs))


def report_document(board, runs, *, workdir=None, command="", curves_run: str | None = None, alpha: float = 0.05,
                    title: str = "") -> dict:
    """`collect` with the provenance of `runs` (the RunInputs the board was built from), the mitigation
    trade-offs of its runs and the demographic-encoding probes of their encoders (`mitigation_sections`)."""
    from benchmark.report.provenance import command_line, provenance

    record = provenance(runs, workdir=workdir, command=command)
    tradeoffs, probes = mitigation_sections(board, workdir)
    return collect(board, curves_run=curves_run, provenance=record, command=command_line(command), alpha=alpha,
                   title=title, tradeoffs=tradeoffs, probes=probes)


def mitigation_sections(board, workdir=None) -> tuple[dict, dict]:
    """The report's trade-off section (every mitigation run of the board beside its plain run, paired and judged
    as `bench tradeoff` does: `benchmark.leaderboard.tradeoff.board_comparisons`) and its demographic-encoding
    section (the newest probe of each attribute of each encoder's store, `benchmark.leaderboard.probes`; only
    with a workdir), as plain JSON."""
    from benchmark.core.identity import finite_or_none
    from benchmark.leaderboard.probes import encoder_probes
    from benchmark.leaderboard.tradeoff import board_comparisons

    comparisons, notes = board_comparisons(board)
    tradeoffs = {"comparisons": [c.as_dict() for c in comparisons], "notes": notes}
    attributes, encoders = encoder_probes(workdir, board.entries) if workdir is not None else ([], [])
    kept = ("auc", "dataset", "levels", "created", "rows", "test_patients")
    probes = {"attributes": attributes,
              "encoders": [{**item, "probes": {a: {k: p.get(k) for k in kept} if p else None
                                               for a, p in item["probes"].items()}} for item in encoders]}
    return finite_or_none(tradeoffs), probes
