"""One leaderboard as plain data: every run's report, its rank (or its place below the chance gate), its
rank interval, whether it is on the Pareto front, the repeats of a configuration, and notes.

`build` evaluates every run once (all runs share the seed, so runs on the same test set share their patient
draws and their replicates are paired), corrects the permutation p-values of the gap columns of the whole
table together (Holm by default; every run x every gap column shown, the ranking figure included; other
figures carry `p_adj: None`), adds the table-level figures (DTO) and ranks (`benchmark.leaderboard.ranking`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.predictions import unknown_group_values
from benchmark.leaderboard import ranking
from benchmark.leaderboard.loading import RunInput, check_comparable, evaluate_run

DEFAULT_RANK = "worst_group_utility"
SHOWN_FIGURES = ("utility", "worst_group_utility", "dto", "accuracy", "macro_f1", "f1_gap_sex", "f1_gap_age",
                 "auc_gap_sex", "auc_gap_age", "ece", "ece_gap_sex", "ece_gap_age", "eqodds_sex", "eqodds_age")
"""The columns of the md table and the figures of the table's test family (the gaps among them)."""
ERR_RANK = "unknown --rank-by figure {name!r}; figures of these runs: {known}"
ERR_DEFAULT_RANK = (
    "the default ranking figure {name!r} needs groups{without}: values of an attribute of --groups in the "
    "predictions (sex, age; race and insurance where the dataset records them); choose --groups the runs have, or "
    "rank by another figure with --rank-by FIGURE, one of: {known}"
)
NOTE_MISSING = ("{source}: no values for {missing} (the dataset does not record them, or an outside file lacks the "
                "column); those groups and their figures are left out")
NOTE_SHARED_GROUPS = ("{lacking}: every run is evaluated and ranked on the groups all of them have ({groups}), so "
                      "that worst-group figures compare like with like")
NOTE_RANDOM = ("{n} of {total} runs come from random-init weights ({names}{more}): their figures show that the tool "
               "works, they are no finding about X-rays or an encoder")
NOTE_NOT_REWEIGHTED = "{source}: cells without both labels keep weight 1 under --reweight-prevalence: {cells}"
NOTE_FIXED_THRESHOLDS = ("{name}: no val rows, so every class is called positive at p >= 0.5 (thresholds fixed, "
                         "not tuned): accuracy, F1 and the TPR/FPR gaps depend on that choice")
NOTE_NO_POSITIVES = ("{name}: no positive test image for {classes}: their AUC, AP and TPR are undefined and left out "
                     "of the class means (macro_auc and the figures built on them average the other classes)")
NOTE_MASKED = ("{name}: masked test labels (uncertain under --uncertain ignore), each left out of its class's figures "
               "only (never counted as negatives; the image counts elsewhere): {counts}")


@dataclass
class Entry:
    """One run on the board. `rank` 1.. for ranked runs, None below the chance gate (`chance`)."""

    run: RunInput
    report: object  # fairness.FairnessReport
    rank: int | None = None
    chance: bool = False
    pareto: bool = False
    p_first: float | None = None
    rank_interval: tuple[int, int] | None = None
    notes: list = field(default_factory=list)

    def value(self, name: str) -> float:
        figure = self.report.figures.get(name)
        return float("nan") if figure is None else figure.value

    def replicates(self, name: str):
        figure = self.report.figures.get(name)
        return None if figure is None else figure.replicates


@dataclass
class Leaderboard:
    """The ranked entries (ranked runs first, then those below the chance gate) and what the table says."""

    entries: list
    rank_by: str
    block: str = ""
    options: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    repeats: list = field(default_factory=list)
    family_size: int = 0

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index):
        return self.entries[index]

    @property
    def ranked(self) -> list:
        return [e for e in self.entries if not e.chance]

    def entry(self, name: str) -> Entry:
        """The entry of run `name` (exact, or the one run whose name contains it)."""
        exact = [e for e in self.entries if e.run.name == name]
        partial = [e for e in self.entries if name in e.run.name]
        found = exact or partial
        if len(found) != 1:
            known = ", ".join(e.run.name for e in self.entries)
            what = "no run" if not found else f"{len(found)} runs"
            raise BenchError(f"{what} named {name!r} on the leaderboard; runs: {known}")
        return found[0]


def run_notes(entry: Entry) -> list[str]:
    """What a reader of any format must know about one run's figures: thresholds fixed at 0.5 for want of val
    rows, classes without a positive test image (dropped from the class means where undefined), masked test
    labels per class."""
    report, notes = entry.report, []
    if report.thresholds.rule == "fixed (no val split)":
        notes.append(NOTE_FIXED_THRESHOLDS.format(name=entry.run.name))
    overall = next((row for row in report.groups if row.attribute == "overall"), None)
    absent = [cls for cls, count in (overall.positives.items() if overall else ()) if count == 0]
    if absent:
        notes.append(NOTE_NO_POSITIVES.format(name=entry.run.name, classes=", ".join(absent)))
    masked = report.options.get("masked") or {}
    if any(masked.values()):
        counts = ", ".join(f"{cls} {count} of {report.n_test}" for cls, count in masked.items() if count)
        notes.append(NOTE_MASKED.format(name=entry.run.name, counts=counts))
    return notes


def shared_attributes(entries: list[Entry]) -> list[str] | None:
    """The group attributes every run was evaluated on, in the first run's order, when the runs differ in them (a
    file without sex values, say); None when they all have the same."""
    chosen = [list(entry.report.options.get("attributes") or ()) for entry in entries]
    if all(attributes == chosen[0] for attributes in chosen):
        return None
    return [a for a in chosen[0] if all(a in attributes for attributes in chosen)]


def tested_family(rank_by: str) -> set[str]:
    return set(SHOWN_FIGURES) | {rank_by}


def build(runs: list[RunInput], *, rank_by: str = DEFAULT_RANK, correction: str = "holm", alpha: float = 0.05,
          block: str = "", **options) -> Leaderboard:
    """Evaluate every run, correct the gap p-values of the table together, add DTO, rank, group repeats."""
    from fairness import ResamplingPlan

    from benchmark.leaderboard.repeats import group_repeats

    notes = [note for run in runs for note in run.notes] + check_comparable(runs)
    plan = ResamplingPlan()  # runs on the same test set share their bootstrap draws (paired replicates)
    def evaluated(options) -> list[Entry]:
        return [Entry(run, evaluate_run(run, correction=correction, plan=plan, tested_figures=tested_family(rank_by),
                                        **options)) for run in runs]

    entries = evaluated(options)
    common = shared_attributes(entries)
    if common is not None:  # some runs lack an attribute others have: every run on the groups all of them have
        lacking = "; ".join(f"{e.run.source} has no values for {', '.join(e.report.options['attributes_without_values'])}"
                            for e in entries if e.report.options.get("attributes_without_values"))
        plan = ResamplingPlan()
        entries = evaluated({**options, "attributes": common})
        notes.append(NOTE_SHARED_GROUPS.format(lacking=lacking, groups=", ".join(common) or "none: overall figures only"))
    for entry in entries:
        missing = entry.report.options.get("attributes_without_values")
        if missing:
            notes.append(NOTE_MISSING.format(source=entry.run.source, missing=", ".join(missing)))
        unmatched = entry.report.options.get("not_reweighted")
        if unmatched:
            notes.append(NOTE_NOT_REWEIGHTED.format(source=entry.run.source, cells="; ".join(unmatched[:6])))
        notes += [f"{entry.run.name}: {note}"  # race / insurance unknown for some test images: never a group
                  for note in unknown_group_values(entry.run.frame, entry.report.options.get("attributes", ()))]
        entry.notes = run_notes(entry)
        notes += entry.notes
    confidence = options.get("confidence", 0.95)
    random = [entry.run.name for entry in entries if entry.run.record.random_init]
    if random:
        notes.append(NOTE_RANDOM.format(n=len(random), total=len(entries), names=", ".join(random[:4]),
                                        more=", ..." if len(random) > 4 else ""))
    notes += ranking.add_dto(entries, confidence)
    _check_rank_by(entries, rank_by)
    family_size = _correct(entries, tested_family(rank_by) & set(columns_for(entries, rank_by)), correction)
    entries = rank_entries(entries, rank_by, confidence)
    board = Leaderboard(entries, rank_by, block=block, notes=notes, family_size=family_size,
                        options={"correction": correction, "alpha": alpha,
                                 "threshold_rule": options.get("threshold_rule", "f1"), **_table_options(entries)})
    board.repeats = group_repeats(entries)
    return board


def rank_entries(entries: list, rank_by: str, confidence: float = 0.95) -> list:
    """The chance gate, the order, ranks, rank intervals and the Pareto front of evaluated entries (with DTO
    added); returns the entries in table order."""
    for entry in entries:
        entry.chance = ranking.below_chance(entry.report)
    entries = ranking.order(entries, rank_by)
    for position, entry in enumerate(e for e in entries if not e.chance):
        entry.rank = position + 1
    ranking.rank_uncertainty([e for e in entries if not e.chance], rank_by, confidence)
    ranking.pareto_front(entries)
    return entries


def _table_options(entries) -> dict:
    if not entries:
        return {}
    options = entries[0].report.options
    return {key: options.get(key) for key in ("n_boot", "n_perm", "confidence", "seed", "permutation",
                                               "worst_group_over", "min_group_size", "min_positives", "reweighted")}


def _check_rank_by(entries, rank_by: str) -> None:
    known = sorted({name for e in entries for name in e.report.figures})
    if rank_by not in known:
        missing = sorted({a for e in entries for a in e.report.options.get("attributes_without_values") or ()})
        without = f", and no run has values for {', '.join(missing)}" if missing else ""
        message = ERR_DEFAULT_RANK if rank_by == DEFAULT_RANK else ERR_RANK
        raise BenchError(message.format(name=rank_by, known=", ".join(known), without=without))


def _correct(entries, family: set, correction: str) -> int:
    """Adjust the raw p-values of the family's gaps across the whole table; every other p_adj becomes None."""
    from fairness.multitest import adjust_p_values

    tests = [(e, name) for e in entries for name, fig in e.report.figures.items()
             if fig.p_value is not None and name in family]
    raw = [e.report.figures[name].p_value for e, name in tests]
    adjusted = adjust_p_values([np.nan if p is None else p for p in raw], method=correction)
    for entry in entries:
        for figure in entry.report.figures.values():
            figure.p_adj = None
    for (entry, name), p_adj in zip(tests, adjusted):
        entry.report.figures[name].p_adj = float(p_adj) if np.isfinite(p_adj) else None
    return int(np.sum(np.isfinite(adjusted)))


def columns_for(entries, rank_by: str) -> list[str]:
    """The figure columns of the full (md) table: the ranking figure, then the shown figures present."""
    present = {name for e in entries for name in e.report.figures}
    return [rank_by] + [name for name in SHOWN_FIGURES if name != rank_by and name in present]
