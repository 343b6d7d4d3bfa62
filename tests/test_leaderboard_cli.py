"""`bench leaderboard`: --predictions import (CSV, Parquet), workdir runs, ranking, JSON shape, bad files."""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pytest

from benchmark import leaderboard
from benchmark.cli import main
from benchmark.core.errors import BenchError

CLASSES = ("Effusion", "Edema", "No_Finding")


def prediction_frame(seed: int, *, female_penalty: float, n: int = 500) -> pl.DataFrame:
    """Multi-label predictions where women's positive scores are pushed down by `female_penalty`."""
    rng = np.random.default_rng(seed)
    patient = rng.integers(0, n // 2, n)
    sex = np.where(patient % 2 == 0, "F", "M")
    age = (25 + patient % 60).astype(float)
    y = (rng.random((n, len(CLASSES))) < 0.3).astype(np.int8)
    p = np.clip(0.4 * y + 0.6 * rng.random(y.shape) - female_penalty * (sex == "F")[:, None] * y, 0, 1)
    columns = {
        "image_id": [f"img{i}" for i in range(n)],
        "patient_id": [f"pat{x}" for x in patient],
        "sex": sex,
        "age": age,
        "split": np.where(rng.random(n) < 0.3, "val", "test"),
    }
    columns.update({f"y_{c}": y[:, j] for j, c in enumerate(CLASSES)})
    columns.update({f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)})
    return pl.DataFrame(columns)


FAST = ["--n-boot", "60", "--n-perm", "60"]


def run_json(capsys, argv) -> dict:
    assert main(argv + ["--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def external_files(tmp_path):
    fair = tmp_path / "fair.csv"
    biased = tmp_path / "biased.parquet"
    prediction_frame(0, female_penalty=0.0).write_csv(fair)
    prediction_frame(1, female_penalty=0.35).write_parquet(biased)
    return fair, biased


def test_predictions_import_ranks_the_fairer_run_first_with_the_json_shape(capsys, external_files, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "unused-home"))
    fair, biased = external_files
    document = run_json(capsys, ["leaderboard", "--predictions", f"biased={biased}", "--predictions", f"fair={fair}"] + FAST)
    names = [run["name"] for run in document["runs"]]
    assert names == ["fair", "biased"]
    run = document["runs"][1]
    assert {"name", "method", "encoder", "n_test", "figures", "groups"} <= set(run)
    assert run["method"] == "external"
    assert run["n_test"] == int((prediction_frame(1, female_penalty=0.35)["split"] == "test").sum())
    for name in ("accuracy", "macro_f1", "macro_auc", "f1_gap_sex", "f1_gap_age", "var_f1", "eqodds_sex", "eqodds_age",
                 "ece_gap_sex", "ece_gap_age", "auc_gap_sex", "worst_group_auc_sex", "eod_sex", "eopp_age", "dpd_sex",
                 "es_auc_sex", "underdiagnosis_gap_sex", "tpr_disparity_age", "utility", "worst_group_utility", "dto",
                 "brier", "balanced_accuracy"):
        figure = run["figures"][name]
        assert {"value", "ci", "p_adj"} <= set(figure)
        assert len(figure["ci"]) == 2
        assert ("mde" in figure) == (document["figures"][name]["kind"] == "gap")
    assert run["figures"]["f1_gap_sex"]["value"] > 0.1
    assert run["figures"]["f1_gap_sex"]["ci"][0] > 0
    assert run["figures"]["macro_auc"]["p_adj"] is None
    assert run["rank"] == 2 and run["pareto"] is False and run["below_chance"] is False
    assert document["runs"][0]["p_first"] > 0.5 and document["runs"][0]["rank_interval"][0] == 1
    assert document["ranking"]["rank_by"] == "worst_group_utility"
    assert set(run["groups"]["sex"]["F"]["prevalence"]) == set(CLASSES)
    assert run["groups"]["sex"]["F"]["count"] + run["groups"]["sex"]["M"]["count"] == run["n_test"]
    assert set(run["groups"]) == {"overall", "sex", "age", "sex_age"}
    assert not (tmp_path / "unused-home").exists()  # no workdir needed


def test_rank_by_a_performance_figure_puts_the_best_first(capsys, external_files):
    fair, biased = external_files
    document = run_json(capsys, ["leaderboard", "--predictions", f"biased={biased}", "--predictions", f"fair={fair}",
                                 "--rank-by", "macro_auc"] + FAST)
    values = [run["figures"]["macro_auc"]["value"] for run in document["runs"]]
    assert values == sorted(values, reverse=True)
    document = run_json(capsys, ["leaderboard", "--predictions", f"fair={fair}", "--predictions", f"biased={biased}",
                                 "--rank-by", "auc_gap_sex"] + FAST)
    gaps = [abs(run["figures"]["auc_gap_sex"]["value"]) for run in document["runs"]]
    assert gaps == sorted(gaps)


def test_significant_gaps_are_marked_and_small_groups_flagged(capsys, tmp_path):
    frame = prediction_frame(2, female_penalty=0.4, n=900)
    frame = frame.with_columns(pl.when(pl.col("age") > 80).then(pl.lit(95.0)).otherwise(pl.col("age")).alias("age"))
    path = tmp_path / "run.csv"
    frame.write_csv(path)
    ranked = leaderboard.build(leaderboard.load_external([f"r={path}"]), attributes="sex,age", age_bins="40,80",
                               rank_by="f1_gap_sex", n_boot=60, n_perm=200, seed=0, min_group_size=40,
                               min_positives=0)
    report = ranked[0].report
    assert report.figures["f1_gap_sex"].p_adj < 0.05
    assert "*" in leaderboard.format_figure(report.figures["f1_gap_sex"])
    flagged = [row for row in report.groups if row.flag]
    assert flagged and all(row.count < 40 for row in flagged)
    assert any(fig.flag for fig in report.figures.values())


def test_workdir_runs_are_read_and_filtered(capsys, workdir):
    from benchmark.core.runs import RunRecord, new_run_path, write_predictions

    for encoder, method, penalty in (("tiny-clip", "linear", 0.0), ("tiny-clip", "mlp", 0.3), ("gloria", "linear", 0.1)):
        path = new_run_path(workdir, "nih14", encoder, method)
        write_predictions(path, prediction_frame(3, female_penalty=penalty),
                          RunRecord(run_id=path.parent.name, encoder=encoder, method=method, task="nih14",
                                    task_kind="multi", classes=CLASSES, random_init=encoder.startswith("tiny")))
    document = run_json(capsys, ["leaderboard", "--task", "nih14"] + FAST)
    assert len(document["runs"]) == 3
    assert {r["encoder"]: r["random_init"] for r in document["runs"]} == {"tiny-clip": True, "gloria": False}
    [note] = [n for n in document["notes"] if "random-init" in n]
    assert note.startswith("2 of 3 runs come from random-init weights") and "gloria" not in note
    document = run_json(capsys, ["leaderboard", "--task", "nih14", "--method", "linear", "--model", "tiny-clip"] + FAST)
    assert [(r["encoder"], r["method"]) for r in document["runs"]] == [("tiny-clip", "linear")]
    with pytest.raises(BenchError, match="no runs of task 'other'"):
        leaderboard.load_task_runs(workdir, "other")


def test_table_markdown_and_csv_render(capsys, external_files):
    fair, biased = external_files
    assert main(["leaderboard", "--predictions", f"fair={fair}", "--predictions", f"biased={biased}", "--by-class"] + FAST) == 0
    table = capsys.readouterr().out
    assert "worst_group_utility" in table and "per class" in table and "P(1st)" in table
    argv = ["leaderboard", "--predictions", f"fair={fair}", "--predictions", f"biased={biased}", "--format"]
    assert main(argv + ["csv", "--by-class"] + FAST) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert main(argv + ["json"] + FAST) == 0
    document = json.loads(capsys.readouterr().out)
    assert tuple(table.columns) == leaderboard.CSV_COLUMNS
    assert table["value"].dtype == pl.Float64 and table["ci_low"].dtype == pl.Float64
    for rank, run in enumerate(document["runs"], start=1):
        rows = table.filter((pl.col("name") == run["name"]) & pl.col("class").is_null())
        assert rows["position"].unique().to_list() == [rank]
        assert rows["rank"].unique().to_list() == [run["rank"]]
        f1_gap = rows.filter(pl.col("figure") == "f1_gap_sex").row(0, named=True)
        assert f1_gap["value"] == pytest.approx(run["figures"]["f1_gap_sex"]["value"])
        assert [f1_gap["ci_low"], f1_gap["ci_high"]] == pytest.approx(run["figures"]["f1_gap_sex"]["ci"])
    per_class = table.filter(pl.col("class").is_not_null())
    assert set(per_class["class"]) == set(CLASSES) and "auc" in set(per_class["figure"])
    assert main(["leaderboard", "--predictions", f"fair={fair}", "--format", "md"] + FAST) == 0
    assert "| rank | P(1st) | rank 95% | Pareto | name |" in capsys.readouterr().out


def test_single_label_predictions_use_argmax(capsys, tmp_path):
    rng = np.random.default_rng(4)
    n = 300
    labels = rng.integers(0, 3, n)
    p = rng.dirichlet(np.ones(3), n)
    frame = pl.DataFrame({
        "image_id": [str(i) for i in range(n)], "patient_id": [str(i // 2) for i in range(n)],
        "sex": rng.choice(["F", "M"], n), "age": rng.integers(20, 90, n).astype(float), "split": ["test"] * n,
        **{f"y_{c}": (labels == j).astype(np.int8) for j, c in enumerate("abc")},
        **{f"p_{c}": p[:, j] for j, c in enumerate("abc")},
    })
    path = tmp_path / "single.csv"
    frame.write_csv(path)
    document = run_json(capsys, ["leaderboard", "--predictions", f"s={path}"] + FAST)
    assert document["runs"][0]["thresholds"]["rule"] == "argmax"
    expected = float(np.mean(p.argmax(axis=1) == labels))
    assert document["runs"][0]["figures"]["accuracy"]["value"] == pytest.approx(expected, abs=1e-12)


def test_bad_files_get_errors_naming_file_column_and_row(capsys, tmp_path):
    frame = prediction_frame(5, female_penalty=0.0, n=50)
    broken = frame.with_columns(pl.when(pl.arange(0, 50) == 7).then(pl.lit(1.7)).otherwise(pl.col("p_Edema")).alias("p_Edema"))
    path = tmp_path / "broken.csv"
    broken.write_csv(path)
    assert main(["leaderboard", "--predictions", f"x={path}"] + FAST) == 2
    message = capsys.readouterr().err
    assert "broken.csv" in message and "p_Edema" in message and "row 7" in message
    only_val = frame.with_columns(pl.lit("val").alias("split"))
    path = tmp_path / "val.csv"
    only_val.write_csv(path)
    with pytest.raises(BenchError) as error:
        leaderboard.build(leaderboard.load_external([f"v={path}"]), n_boot=0, n_perm=0)
    assert str(error.value) == leaderboard.ERR_NO_TEST.format(source=str(path))
    with pytest.raises(BenchError) as error:
        leaderboard.load_external(["no-equals-sign.csv"])
    assert str(error.value) == leaderboard.ERR_SPEC.format(spec="no-equals-sign.csv")
    with pytest.raises(BenchError, match="unknown --rank-by figure 'nope'"):
        leaderboard.build(leaderboard.load_external([f"x={_write(frame, tmp_path)}"]), rank_by="nope", n_boot=0, n_perm=0)


def _write(frame, tmp_path):
    path = tmp_path / "good.parquet"
    frame.write_parquet(path)
    return path


def test_default_ranking_follows_the_chosen_groups_and_without_groups_says_to_pass_rank_by(capsys, tmp_path):
    frame = prediction_frame(0, female_penalty=0.0)
    path = tmp_path / "run.csv"
    frame.write_csv(path)
    for options, cells in ((["--groups", "sex"], ["sex"]), (["--groups", "sex*age"], ["sex_age"]),
                           (["--age-bins", "decades"], ["sex_age"])):
        document = run_json(capsys, ["leaderboard", "--predictions", f"r={path}", *options] + FAST)
        assert document["ranking"]["worst_group_over"] == cells
    path = tmp_path / "anonymous.csv"
    frame.drop(["sex", "age"]).write_csv(path)
    with pytest.raises(BenchError) as error:
        main(["--verbose", "leaderboard", "--predictions", f"r={path}"] + FAST)
    message = str(error.value)
    assert "unknown --rank-by" not in message  # the user never typed --rank-by
    assert "default ranking figure 'worst_group_utility'" in message and "--rank-by FIGURE" in message
    assert "no run has values for age, sex" in message
    with pytest.raises(BenchError, match="no run has values for race"):  # NIH-like: sex and age only
        main(["--verbose", "leaderboard", "--predictions", f"r={tmp_path / 'run.csv'}", "--groups", "race"] + FAST)
    assert "macro_auc" in message


def test_runs_with_different_classes_are_refused(capsys, tmp_path):
    same = tmp_path / "three.csv"
    fewer = tmp_path / "two.csv"
    prediction_frame(0, female_penalty=0.0).write_csv(same)
    prediction_frame(1, female_penalty=0.0).drop(["y_Edema", "p_Edema"]).write_csv(fewer)
    assert main(["leaderboard", "--predictions", f"a={same}", "--predictions", f"b={fewer}"] + FAST) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "predict different classes" in err and "b: Effusion, No_Finding" in err


def test_runs_on_different_test_sets_get_a_note_and_same_sets_do_not(capsys, tmp_path):
    first, second, copy = tmp_path / "first.csv", tmp_path / "second.csv", tmp_path / "copy.csv"
    prediction_frame(0, female_penalty=0.0).write_csv(first)
    prediction_frame(0, female_penalty=0.0).write_csv(copy)
    prediction_frame(1, female_penalty=0.0).write_csv(second)
    assert main(["leaderboard", "--predictions", f"a={first}", "--predictions", f"c={copy}", "--format", "json"] + FAST) == 0
    assert "different test sets" not in capsys.readouterr().err
    assert main(["leaderboard", "--predictions", f"a={first}", "--predictions", f"b={second}", "--format", "json"] + FAST) == 0
    assert "different test sets" in " ".join(capsys.readouterr().err.split())
