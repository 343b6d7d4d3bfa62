"""What a report draws beyond the leaderboard's evaluation (the `bench report` options)."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.report.style import FORMATS


@dataclass(frozen=True)
class ReportOptions:
    """`plane_y`: the utility-fairness plane's y (worst_group_utility, or a gap such as f1_gap_sex);
    `heatmap`: the per-class metric whose group differences the heatmap shows (f1 or auc); `max_runs`: runs
    shown in the per-run figures (forest plot, heatmap), the best-placed first; `formats`: the figure files."""

    plane_y: str = "worst_group_utility"
    heatmap: str = "f1"
    max_runs: int = 12
    formats: tuple = FORMATS

    def as_json(self) -> dict:
        return {"plane_y": self.plane_y, "heatmap": self.heatmap, "max_runs": self.max_runs,
                "formats": list(self.formats)}
