"""The figures table covers every figure the engine computes, and drives direction, tests and the docs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairness import evaluate
from fairness.registry import FIGURES, BETTER, KINDS, UnknownFigure, figure_spec, markdown_table, sort_key

DOCS = Path(__file__).resolve().parent.parent / "docs" / "FAIRNESS.md"


def synthetic(kind: str, n=240, seed=0):
    rng = np.random.default_rng(seed)
    classes = ("Effusion", "Edema", "No_Finding")
    if kind == "single":
        y = np.eye(3, dtype=np.int8)[rng.integers(0, 3, n)]
        p = rng.dirichlet(np.ones(3), n)
    else:
        y = rng.integers(0, 2, (n, 3)).astype(np.int8)
        p = rng.random((n, 3))
    return dict(y_test=y, p_test=p, kind=kind, classes=classes, patient_ids=[f"p{i // 2}" for i in range(n)],
                sex=rng.choice(["F", "M"], n).tolist(), age=rng.uniform(20, 90, n).tolist(), y_val=y, p_val=p)


@pytest.fixture(scope="module")
def reports():
    return {kind: evaluate(**synthetic(kind), n_boot=20, n_perm=20) for kind in ("single", "multi")}


def expanded(attributes=("sex", "age", "sex_age")) -> set[str]:
    """Every figure `evaluate` computes (the rows of scope "run"; "table" rows need a leaderboard)."""
    names = set()
    for spec in (spec for spec in FIGURES if spec.scope == "run"):
        names |= {spec.name.format(attr=a) for a in attributes} if spec.templated else {spec.name}
    return names


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_every_computed_figure_is_in_the_table_and_every_row_is_computed(reports, kind):
    computed = set(reports[kind].figures)
    for name in computed:
        figure_spec(name)  # raises UnknownFigure for a figure the table lacks
    assert computed == expanded(), f"{kind}: table rows never computed: {sorted(expanded() - computed)}"
    defined = [name for name, fig in reports[kind].figures.items() if np.isfinite(fig.value)]
    assert set(defined) == computed, f"undefined on a {kind}-label task: {sorted(computed - set(defined))}"


def test_rows_are_well_formed_and_tested_figures_get_p_values(reports):
    for spec in FIGURES:
        assert spec.kind in KINDS and spec.better in BETTER and spec.formula and spec.source, spec
    report = reports["multi"]
    for name, figure in report.figures.items():
        spec, _ = figure_spec(name)
        tested = spec.permuted is not None
        assert (figure.p_value is not None) == tested, name


def test_direction_comes_from_the_table():
    assert sort_key("macro_auc", 0.9) < sort_key("macro_auc", 0.6)  # higher is better
    assert sort_key("auc_gap_sex", 0.01) < sort_key("auc_gap_sex", 0.2)  # lower is better
    assert sort_key("f1_gap_sex", -0.01) < sort_key("f1_gap_sex", 0.05)  # signed: nearest zero
    assert figure_spec("eqodds_race")[1] == "race" and figure_spec("f1_gap_age")[1] == "sex_age"
    with pytest.raises(UnknownFigure):
        figure_spec("made_up_figure")


def test_the_docs_show_the_table():
    assert markdown_table() in DOCS.read_text(), "docs/FAIRNESS.md: paste fairness.registry.markdown_table()"
