"""`bench report` as a user runs it: outside prediction files in, a report folder out (page, figures, tables,
the data); the reproduction check; refusals that leave the folder as it was."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from report_fakes import prediction_frame

FAST = ["--n-boot", "40", "--n-perm", "0"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predictions")
    specs = []
    for name, seed, penalty in (("fair@0", 1, 0.0), ("fair@1", 2, 0.0), ("biased", 3, 0.3)):
        path = folder / f"{name.replace('@', '-')}.csv"
        prediction_frame(seed, female_penalty=penalty).write_csv(path)
        specs += ["--predictions", f"{name}={path}"]
    return specs


def test_a_report_of_outside_files_writes_the_page_figures_tables_and_data(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "unused"))
    out = tmp_path / "report"
    assert main(["report", *files, "--out", str(out), *FAST]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert f"report: {out / 'report.html'}" in printed and f"open it in a browser: {(out / 'report.html').as_uri()}" in printed
    figures = {path.name for path in (out / "figures").iterdir()}
    assert figures == {f"{name}.{fmt}" for name in ("plane", "forest", "heatmap", "progression", "calibration", "ranks",
                                                    "seeds") for fmt in ("svg", "png", "pdf")}
    tables = {path.name for path in (out / "tables").iterdir()}
    assert tables == {f"{name}.{fmt}" for name in ("leaderboard", "seed-study", "per-group", "per-class", "seeds")
                      for fmt in ("md", "csv", "tex")}
    import csv

    with open(out / "tables" / "seed-study.csv") as handle:  # outside files are named by their NAME, not "external"
        named = sorted((row["encoder"], row["seed"]) for row in csv.DictReader(handle))
    assert named == [("biased", ""), ("fair", "0"), ("fair", "1")]
    page = (out / "report.html").read_text()
    assert page.count('<figure class="report-figure"') == 7 and "<svg" in page
    assert "cannot tell whether their data or weights are real" in page
    document = json.loads((out / "report-data.json").read_text())
    assert [run["name"] for run in document["leaderboard"]["runs"]][-1] == "biased"
    assert document["provenance"]["command"].startswith("bench report")
    assert not list(tmp_path.glob(".report.tmp-*"))


def test_the_reproduction_check_is_printed_and_tabulated(files, tmp_path, capsys):
    published = tmp_path / "published.csv"
    published.write_text("encoder,method,figure,value,source\nexternal,external,accuracy,0.99,a paper\n")
    out = tmp_path / "report"
    assert main(["report", *files, "--out", str(out), "--against", str(published), "--formats", "svg", *FAST]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "reproduction check: 0 of 3 comparisons of run with published value inside our 95% CI (1 published value)" in printed
    assert (out / "tables" / "reproduction.tex").is_file()
    assert 'id="reproduction"' in (out / "report.html").read_text()


def test_a_folder_that_is_not_a_report_is_refused_and_left_as_it_was(files, tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("keep me")
    assert main(["report", *files, "--out", str(out), *FAST]) == 2
    assert "holds files and no report.html" in " ".join(capsys.readouterr().err.split())
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"] and not list(tmp_path.glob(".thesis.*"))


def test_an_earlier_report_is_replaced_and_a_bad_reference_changes_nothing(files, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", *files, "--out", str(out), "--formats", "svg", *FAST]) == 0
    first = (out / "report-data.json").read_text()
    (out / "report.html").write_text("old")
    bad = tmp_path / "bad.csv"
    bad.write_text("encoder,method,figure,value,source\nx,y,accuracy,lots,s\n")
    assert main(["report", *files, "--out", str(out), "--against", str(bad), *FAST]) == 2
    assert (out / "report.html").read_text() == "old"
    assert main(["report", *files, "--out", str(out), "--formats", "svg", *FAST]) == 0
    assert (out / "report.html").read_text() != "old" and not (out / "figures" / "plane.png").exists()
    assert json.loads(first)["leaderboard"]["runs"] == json.loads((out / "report-data.json").read_text())["leaderboard"]["runs"]


@pytest.mark.parametrize("argv, message", [
    (["report", "--out", "x"], "give --task TASK"),
    (["report", "--predictions", "a:x=f.csv", "--predictions", "b:y=f.csv", "--out", "x"], "a report covers one"),
    (["report", "--predictions", "x=f.csv", "--formats", "gif", "--out", "x"], "--formats 'gif'"),
])
def test_bad_requests_get_one_line(argv, message, tmp_path, capsys, monkeypatch, files):
    monkeypatch.chdir(tmp_path)
    if "f.csv" in " ".join(argv):
        prediction_frame(0).write_csv(tmp_path / "f.csv")
    assert main(argv) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_the_synthetic_marker_is_the_one_the_generators_write():
    from benchmark.datasets.synth import EFFECTS_NAME
    from benchmark.report.provenance import SYNTHETIC_MARKER

    assert SYNTHETIC_MARKER == EFFECTS_NAME


def test_files_without_groups_get_a_report_that_says_which_figures_need_them(tmp_path, capsys):
    specs = []
    for name, seed in (("a", 1), ("b", 2)):
        path = tmp_path / f"{name}.csv"
        prediction_frame(seed).drop(["sex", "age"]).write_csv(path)
        specs += ["--predictions", f"{name}={path}"]
    out = tmp_path / "report"
    assert main(["report", *specs, "--out", str(out), "--rank-by", "utility", "--formats", "svg", *FAST]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    for name in ("plane", "forest", "heatmap", "seeds"):
        assert f"figure {name} left out" in printed
    assert (out / "figures" / "calibration.svg").is_file() and (out / "figures" / "progression.svg").is_file()
    assert (out / "report.html").read_text().count('data-missing="true"') == 4
