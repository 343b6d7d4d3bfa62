"""The heads registry, kept as data: one entry per head that `bench fit-heads` can train off a store.

    HEADS["linear"].create(random_state=0, n_classes=6)      # a fresh, unfitted estimator
    parse_heads("linear,mlp")                                # ("linear", "mlp"), or a BenchError listing them

`kind` says how the pipeline drives the estimator and which contract it keeps: "trained" heads learn on the
train split and select on val (`fit(X, y, X_val, y_val)`) and pass scikit-learn's common checks;
"constrained" heads are driven the same way but are randomised, binary-per-class fairlearn classifiers with
their own contract test; "zeroshot" heads learn nothing from images and read the store's prompt text
embeddings (`fit(X_val, y_val, rows=...)`). `needs` names what a head reads besides the labels: "image"
(embeddings), "text" (prompt embeddings), "groups" (the protected attribute of the train and val rows,
`fit(..., groups=, groups_val=)`, chosen with `--protect`) and "test_groups" (the attribute of the rows it
predicts: `predict_proba(X, groups=)`, so the attribute must be known at test time).
Estimators are named as "module:Class" and imported on first use, so `bench --help` stays fast.
Mitigation heads carry a `Mitigation` entry: the plain head they are compared with (`bench tradeoff`), the
gap they aim to shrink, the per-group utility that tells levelling up from levelling down, and their source.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from benchmark.core.errors import BenchError

KINDS = ("trained", "constrained", "zeroshot")
NEEDS = ("image", "text", "groups", "test_groups")


@dataclass(frozen=True)
class Mitigation:
    """What a mitigation head is compared with and on what: `plain` (the head of the same kind without
    mitigation), `gap` (the figure it aims to shrink, "{attr}" for the protected attribute), `utility` (the
    per-group metric whose worst group tells levelling up from down) and `source` (the method's paper)."""

    plain: str
    gap: str
    utility: str
    source: str


@dataclass(frozen=True)
class HeadSpec:
    """One registered head: its name (the run's `method`), estimator and what it needs."""

    name: str
    estimator: str
    kind: str
    description: str
    needs: tuple[str, ...] = ("image",)
    default: bool = False
    defaults: dict = field(default_factory=dict)
    settable: dict = field(default_factory=dict)
    """Hyperparameters a user may set (name -> "integer", "number", "numbers", "boolean" or "text"), so that an
    experiment file is checked without importing the estimator (and torch)."""
    mitigation: Mitigation | None = None

    def estimator_class(self) -> type:
        module, _, name = self.estimator.partition(":")
        return getattr(importlib.import_module(module), name)

    def create(self, **params):
        """A fresh estimator with the entry's defaults, overridden by `params`."""
        return self.estimator_class()(**{**self.defaults, **params})


_TRAINED_SETTABLE = {"lr": "number", "weight_decay": "number", "batch_size": "integer", "max_epochs": "integer",
                     "patience": "integer", "standardize": "boolean", "hidden": "integer", "holdout": "number"}
_LINEAR_SETTABLE = {"Cs": "numbers", "scoring": "text", "max_iter": "integer", "tol": "number",
                    "standardize": "boolean", "holdout": "number"}
_DRO_SETTABLE = {**_TRAINED_SETTABLE, "step_sizes": "numbers", "search_rows": "integer"}
_THRESHOLDS_SETTABLE = {"objective": "text", "base": "text", "grid_size": "integer", "min_group_positives": "integer"}
_REDUCTION_SETTABLE = {"objective": "text", "difference_bound": "number", "max_iter": "integer",
                       "max_rows": "integer", "Cs": "numbers", "min_group_positives": "integer"}
_GROUPS = ("image", "groups")
_KAMIRAN = "group-balanced weights as in Kamiran & Calders, KAIS 2012; Zhang et al., CHIL 2022 for chest X-rays"
_SAGAWA = "Sagawa et al., ICLR 2020 (GroupDRO)"
_HARDT = "Hardt, Price & Srebro, NeurIPS 2016; fairlearn ThresholdOptimizer"
_AGARWAL = "Agarwal et al., ICML 2018; fairlearn ExponentiatedGradient"


def _mitigation_heads() -> tuple[HeadSpec, ...]:
    """Mitigation heads: the protected attribute comes from `--protect`."""
    balancing = []
    for plain, estimator_kind, settable in (("linear", "Linear", _LINEAR_SETTABLE), ("mlp", "MLP", _TRAINED_SETTABLE)):
        balancing += [
            HeadSpec(f"{plain}-reweight", f"heads.mitigation:Reweighted{estimator_kind}", "trained",
                     f"{plain} with group-balanced loss weights (every protected group weighs the same)",
                     needs=_GROUPS, settable=settable, mitigation=Mitigation(plain, "auc_gap_{attr}", "auc", _KAMIRAN)),
            HeadSpec(f"{plain}-resample", f"heads.mitigation:Resampled{estimator_kind}", "trained",
                     f"{plain} on rows drawn group-balanced with replacement", needs=_GROUPS, settable=settable,
                     mitigation=Mitigation(plain, "auc_gap_{attr}", "auc", _KAMIRAN)),
            HeadSpec(f"{plain}-groupdro", f"heads.mitigation:GroupDRO{estimator_kind}", "trained",
                     f"{plain} trained by GroupDRO (online group weights, step size chosen on val)", needs=_GROUPS,
                     settable=_DRO_SETTABLE, mitigation=Mitigation(plain, "auc_gap_{attr}", "auc", _SAGAWA)),
        ]
    constrained = [
        HeadSpec("thresholds-eqodds", "heads.constrained:GroupThresholds", "constrained",
                 "group-specific thresholds per class for equalized odds over the linear probe (fairlearn; "
                 "needs the attribute at test time)", needs=_GROUPS + ("test_groups",),
                 defaults={"constraints": "equalized_odds"}, settable=_THRESHOLDS_SETTABLE,
                 mitigation=Mitigation("linear", "eqodds_{attr}", "balanced_accuracy", _HARDT)),
        HeadSpec("thresholds-eopp", "heads.constrained:GroupThresholds", "constrained",
                 "group-specific thresholds per class for equal opportunity over the linear probe (fairlearn; "
                 "needs the attribute at test time)", needs=_GROUPS + ("test_groups",),
                 defaults={"constraints": "equal_opportunity"}, settable=_THRESHOLDS_SETTABLE,
                 mitigation=Mitigation("linear", "eopp_{attr}", "balanced_accuracy", _HARDT)),
        HeadSpec("expgrad-eqodds", "heads.constrained:ReductionsProbe", "constrained",
                 "logistic probe under equalized odds by fairlearn's exponentiated gradient", needs=_GROUPS,
                 defaults={"constraints": "equalized_odds"}, settable=_REDUCTION_SETTABLE,
                 mitigation=Mitigation("linear", "eqodds_{attr}", "balanced_accuracy", _AGARWAL)),
        HeadSpec("expgrad-tpr", "heads.constrained:ReductionsProbe", "constrained",
                 "logistic probe under true-positive-rate parity by fairlearn's exponentiated gradient",
                 needs=_GROUPS, defaults={"constraints": "equal_opportunity"}, settable=_REDUCTION_SETTABLE,
                 mitigation=Mitigation("linear", "eopp_{attr}", "balanced_accuracy", _AGARWAL)),
    ]
    return tuple(balancing + constrained)


HEADS: dict[str, HeadSpec] = {
    spec.name: spec
    for spec in (
        HeadSpec("linear", "heads.linear:LinearProbe", "trained",
                 "logistic regression (softmax or per-class sigmoids), C chosen on val", default=True,
                 settable=_LINEAR_SETTABLE),
        HeadSpec("seed-linear", "heads.seed_linear:SeedLinearProbe", "trained",
                 "the seed study's probe: embedding -> 1024 -> classes, no nonlinearity, AdamW",
                 settable=_TRAINED_SETTABLE),
        HeadSpec("mlp", "heads.mlp:MLPHead", "trained",
                 "the seed study's MLP: embedding -> 1024 -> BatchNorm -> ReLU -> classes", default=True,
                 settable=_TRAINED_SETTABLE),
        HeadSpec("zeroshot", "heads.zeroshot:ZeroShotHead", "zeroshot",
                 "class prototypes from the encoder's own text tower, in its family's prompt style",
                 needs=("image", "text"), default=True, settable={"temperature": "text"}),
        *_mitigation_heads(),
    )
}
DEFAULT_HEADS: tuple[str, ...] = tuple(name for name, spec in HEADS.items() if spec.default)


def get_head(name: str) -> HeadSpec:
    try:
        return HEADS[name]
    except KeyError:
        raise BenchError(f"unknown head {name!r}; choose from {', '.join(HEADS)}") from None


def parse_heads(text) -> tuple[str, ...]:
    """"linear,mlp" (or a list) -> ("linear", "mlp"); BenchError naming unknown heads."""
    names = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    names = [name for name in names if name]
    unknown = [name for name in names if name not in HEADS]
    if unknown or not names:
        raise BenchError(f"unknown head(s) {unknown or text!r}; choose from {', '.join(HEADS)}")
    return tuple(names)
