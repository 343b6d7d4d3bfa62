"""What every leaderboard format must say about a predictions file: thresholds fixed for want of val rows,
classes without a positive test image, and CSV cells that a spreadsheet would run as formulas (neutralised)."""

from __future__ import annotations

import csv
import io
import json

import polars as pl
import pytest

from benchmark.cli import main
from test_leaderboard_cli import prediction_frame

FAST = ["--n-boot", "20", "--n-perm", "0"]


def board(capsys, tmp_path, frame: pl.DataFrame, fmt: str, name: str = "mine", extra=()) -> tuple[str, str]:
    path = tmp_path / "mine.csv"
    frame.write_csv(path)
    assert main(["leaderboard", "--predictions", f"{name}={path}", *FAST, "--format", fmt, *extra]) == 0
    captured = capsys.readouterr()
    return captured.out, " ".join(captured.err.split())


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("has_val", [True, False])
def test_fixed_thresholds_without_val_rows_are_said_in_every_format(capsys, tmp_path, has_val):
    frame = prediction_frame(0, female_penalty=0.0)
    if not has_val:
        frame = frame.filter(pl.col("split") == "test")
    said = "no val rows"
    rows = csv_rows(board(capsys, tmp_path, frame, "csv")[0])
    assert all((row["thresholds"] == "fixed 0.5 (no val split)") == (not has_val) for row in rows)
    assert all((said in row["notes"]) == (not has_val) for row in rows)
    assert (said in board(capsys, tmp_path, frame, "md")[0]) == (not has_val)
    assert (said in board(capsys, tmp_path, frame, "table")[1]) == (not has_val)  # the terminal: notes on stderr
    document = json.loads(board(capsys, tmp_path, frame, "json")[0])
    assert (document["runs"][0]["thresholds"]["rule"] == "fixed (no val split)") == (not has_val)
    assert any(said in note for note in document["notes"]) == (not has_val)


@pytest.mark.parametrize("positives", [True, False])
def test_a_class_without_test_positives_is_flagged_and_noted(capsys, tmp_path, positives):
    frame = prediction_frame(0, female_penalty=0.0)
    if not positives:
        frame = frame.with_columns(pl.when(pl.col("split") == "test").then(0).otherwise(pl.col("y_Edema"))
                                   .alias("y_Edema"))
    rows = {row["figure"]: row for row in csv_rows(board(capsys, tmp_path, frame, "csv")[0])}
    flagged = "no positive test image for Edema"
    assert (flagged in rows["macro_auc"]["flag"]) == (not positives)
    assert (flagged in rows["macro_auc"]["notes"]) == (not positives)
    assert (flagged in board(capsys, tmp_path, frame, "md")[0]) == (not positives)


def test_csv_cells_that_look_like_formulas_are_neutralised(capsys, tmp_path):
    formula = "=SUM(1+1)"
    frame = prediction_frame(0, female_penalty=0.3).rename({"y_Edema": f"y_{formula}", "p_Edema": f"p_{formula}"})
    out, _ = board(capsys, tmp_path, frame, "csv", name="+run", extra=["--by-class"])
    rows = csv_rows(out)
    text_columns = ("block", "name", "method", "encoder", "figure", "class", "flag", "thresholds", "notes")
    for row in rows:
        for column in text_columns:
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), (column, row[column])
    assert {row["class"] for row in rows} >= {"'" + formula, "Effusion"}, {row["class"] for row in rows}
    assert {row["name"] for row in rows} == {"'+run"}
    values = [float(row["value"]) for row in rows if row["value"]]
    assert min(values) < 0  # negative numbers stay numbers: a gap of this biased run is below zero
