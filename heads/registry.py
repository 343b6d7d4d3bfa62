"""The heads registry, kept as data: one entry per head that `bench fit-heads` can train off a store.

    HEADS["linear"].create(random_state=0, n_classes=6)      # a fresh, unfitted estimator
    parse_heads("linear,mlp")                                # ("linear", "mlp"), or a BenchError listing them

`kind` says how the pipeline drives the estimator: "trained" heads learn on the train split and select
on val (`fit(X, y, X_val, y_val)`); "zeroshot" heads learn nothing from images and read the store's prompt
text embeddings (`fit(X_val, y_val, rows=...)`). `needs` names the store parts a head reads.
Estimators are named as "module:Class" and imported on first use, so `bench --help` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from benchmark.core.errors import BenchError

KINDS = ("trained", "zeroshot")


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

    def estimator_class(self) -> type:
        module, _, name = self.estimator.partition(":")
        return getattr(importlib.import_module(module), name)

    def create(self, **params):
        """A fresh estimator with the entry's defaults, overridden by `params`."""
        return self.estimator_class()(**{**self.defaults, **params})


_TRAINED_SETTABLE = {"lr": "number", "weight_decay": "number", "batch_size": "integer", "max_epochs": "integer",
                     "patience": "integer", "standardize": "boolean", "hidden": "integer", "holdout": "number"}

HEADS: dict[str, HeadSpec] = {
    spec.name: spec
    for spec in (
        HeadSpec("linear", "heads.linear:LinearProbe", "trained",
                 "logistic regression (softmax or per-class sigmoids), C chosen on val", default=True,
                 settable={"Cs": "numbers", "scoring": "text", "max_iter": "integer", "tol": "number",
                           "standardize": "boolean", "holdout": "number"}),
        HeadSpec("seed-linear", "heads.seed_linear:SeedLinearProbe", "trained",
                 "the seed study's probe: embedding -> 1024 -> classes, no nonlinearity, AdamW",
                 settable=_TRAINED_SETTABLE),
        HeadSpec("mlp", "heads.mlp:MLPHead", "trained",
                 "the seed study's MLP: embedding -> 1024 -> BatchNorm -> ReLU -> classes", default=True,
                 settable=_TRAINED_SETTABLE),
        HeadSpec("zeroshot", "heads.zeroshot:ZeroShotHead", "zeroshot",
                 "class prototypes from the encoder's own text tower, in its family's prompt style",
                 needs=("image", "text"), default=True, settable={"temperature": "text"}),
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
