"""The report's tables (Markdown, CSV, LaTeX with booktabs) carry the leaderboard's numbers; the reproduction check
reads a published table and says whether each value lies inside our CI; the shipped seed-study values parse."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from benchmark.core.errors import BenchError
from benchmark.report import reference
from benchmark.report.data import ReportData
from benchmark.report.formats import csv_text, latex, markdown
from benchmark.report.tables import all_tables, figure_cell, seed_study_table
from report_fakes import grid_document

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data():
    document, _, _ = grid_document("single", n_boot=60, n_perm=0)
    return ReportData.from_json(json.loads(json.dumps(document)))


def test_a_figure_cell_is_value_and_ci_and_marks_significance():
    from benchmark.report.data import Estimate

    assert figure_cell(Estimate(0.52, 0.48, 0.56), "accuracy").text == "0.520 [0.480, 0.560]"
    assert figure_cell(Estimate(0.1, 0.05, 0.15, p_adj=0.01), "f1_gap_sex").text.endswith(" *")
    assert figure_cell(Estimate(0.001, -0.0005, 0.002), "ece_gap_sex").text == "0.0010 [-0.0005, 0.0020]"
    assert figure_cell(Estimate(float("nan")), "accuracy").text == "n/a"


def test_the_seed_study_table_has_its_columns_and_the_jsons_numbers_in_every_format(data):
    table = seed_study_table(data)
    names = [c.name for c in table.columns]
    assert names == ["encoder", "method", "seed", "Acc", "macro-F1", "F1 Δ sex", "F1 Δ age", "Var F1", "EqOdds sex",
                     "EqOdds age", "ECE Δ sex", "ECE Δ age"]
    assert len(table.rows) == len(data.runs)
    rows = list(csv.DictReader(io.StringIO(csv_text(table))))
    for row in rows:
        run = next(r for r in data.runs if (r.encoder, r.method, str(r.seed)) == (row["encoder"], row["method"], row["seed"]))
        estimate = run.figure("f1_gap_sex")
        assert float(row["f1_gap_sex"]) == pytest.approx(estimate.value)
        assert float(row["f1_gap_sex_low"]) == pytest.approx(estimate.low)
        assert float(row["f1_gap_sex_high"]) == pytest.approx(estimate.high)
    text = markdown(table)
    assert text.count("\n| ") == len(data.runs) + 1 and "[" in text


def test_latex_uses_booktabs_and_escapes_what_latex_would_read_as_commands(data):
    table = seed_study_table(data)
    text = latex(table)
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text and r"\begin{tabular}{lllrrrrrrrrr}" in text
    assert r"F1 $\Delta$ sex" in text and "_" not in text.replace(r"\_", "").split(r"\begin{tabular}")[1]
    assert text.count(r" \\") == len(data.runs) + 1
    long = all_tables(data)[2]  # per group: more rows than a page holds
    assert len(long.rows) > 45 and r"\begin{longtable}" in latex(long) and r"\endhead" in latex(long)


def test_the_tables_are_the_paper_s_and_the_per_group_and_per_class_ones(data):
    names = [table.name for table in all_tables(data)]
    assert names == ["leaderboard", "seed-study", "per-group", "per-class", "seeds"]
    ranked = all_tables(data)[0]
    assert [row[0].text for row in ranked.rows] == [str(r.rank) if r.rank else "chance" for r in data.runs]
    per_class = all_tables(data)[3]
    assert len(per_class.rows) == len(data.runs) * len(data.classes)
    assert [c.name for c in per_class.columns][2:6] == ["F1", "AUC", "F1 diff sex", "F1 diff age"]


def test_the_reproduction_check_says_whether_each_published_value_is_inside_our_ci(data, tmp_path):
    run = next(r for r in data.runs if r.encoder == "enc-a" and r.method == "full")
    estimate = run.figure("accuracy")
    path = tmp_path / "published.csv"
    path.write_text("encoder,method,figure,value,source\n"
                    f"enc-a,full,accuracy,{100 * (estimate.low + estimate.high) / 2:.4f}%,paper table 1\n"
                    f"enc-a,full,accuracy,{estimate.high + 0.05},paper table 2\n"
                    "enc-a,,f1_gap_sex,0.0,paper text (method not stated)\n"
                    "nobody,full,accuracy,0.5,paper table 3\n")
    table = reference.check(data, reference.read_reference(path))
    verdicts = [row[7].text for row in table.rows]
    assert verdicts[:2] == ["inside", "outside"]
    assert len([r for r in table.rows if r[4].text.startswith("paper text")]) == 4  # every method of enc-a
    assert verdicts[-1] == "not checked"
    assert reference.summary(table) == (f"reproduction check: {verdicts.count('inside')} of 6 comparisons of run with "
                                        "published value inside our 95% CI (4 published values; 1 without a matching run)")


@pytest.mark.parametrize("body, message", [
    ("encoder,method,figure,value\nx,y,accuracy,0.5\n", "needs the columns"),
    ("encoder,method,figure,value,source\nx,y,accuracy,fifty,s\n", "line 2: value 'fifty' is not a number"),
    ("encoder,method,figure,value,source\nx,y,acuracy,0.5,s\n", "line 2: unknown figure 'acuracy'"),
    ("encoder,method,figure,value,source\nx,y,accuracy,0.5,\n", "line 2: source is empty"),
])
def test_a_bad_reference_file_is_refused_naming_the_line_and_value(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(BenchError, match=message):
        reference.read_reference(path)


def test_the_shipped_seed_study_values_parse_name_real_encoders_and_each_has_a_source():
    from extractors.registry import load_registry

    rows = reference.read_reference(REPO / "experiments" / "seed-study-published.csv")
    assert {(r.encoder, r.method, r.figure) for r in rows} >= {("medclip-vit", "full", "accuracy"),
                                                               ("gloria", "", "f1_gap_sex"), ("gloria", "", "f1_gap_age")}
    assert next(r.value for r in rows if r.figure == "accuracy") == pytest.approx(0.596)
    known = set(load_registry())
    assert all(r.encoder in known and len(r.source) > 20 for r in rows)
