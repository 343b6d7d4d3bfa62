"""fairness: the metrics engine — per-group, per-class metrics, the seed study's and peers' fairness figures,
patient-clustered bootstrap CIs, permutation tests and multiple-testing correction, on numpy arrays.

Entry point: `evaluate(...) -> FairnessReport`; see `fairness.engine` and, for every figure's formula and
source, `fairness.figures` and docs/FAIRNESS.md.
"""

from fairness.engine import ResamplingPlan, evaluate
from fairness.report import FairnessReport, Figure, GroupResult, paired_difference
from fairness.groups import build_groups
from fairness.multitest import adjust_p_values
from fairness.thresholds import Thresholds, choose_thresholds, decide

__all__ = [
    "FairnessReport",
    "Figure",
    "GroupResult",
    "ResamplingPlan",
    "Thresholds",
    "adjust_p_values",
    "build_groups",
    "choose_thresholds",
    "decide",
    "evaluate",
    "paired_difference",
]
