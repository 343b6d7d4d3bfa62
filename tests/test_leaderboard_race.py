"""Race and insurance in prediction files: validated, passed to the engine as groups, unknowns reported apart."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.core.predictions import validate_predictions
from benchmark.core.schema import RACES

FAST = ["--n-boot", "60", "--n-perm", "0"]


def frame_with_race(seed: int = 0, n: int = 600) -> pl.DataFrame:
    """No_Finding predictions whose underdiagnosis (healthy called on sick images) is planted in Black patients."""
    rng = np.random.default_rng(seed)
    patient = rng.integers(0, n // 2, n)
    race = np.array(RACES + (None,), dtype=object)[patient % (len(RACES) + 1)]
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = np.clip(0.6 * y + 0.3 * rng.random(n) + 0.5 * ((race == "Black") & (y == 0)), 0, 1)
    return pl.DataFrame({
        "image_id": [f"img{i}" for i in range(n)], "patient_id": [f"pat{x}" for x in patient],
        "sex": np.where(patient % 2 == 0, "F", "M"), "age": (30 + patient % 50).astype(float),
        "race": pl.Series(race.tolist(), dtype=pl.Utf8), "split": np.where(rng.random(n) < 0.3, "val", "test"),
        "y_No_Finding": y, "p_No_Finding": p,
    })


def test_groups_race_and_sex_by_race_are_evaluated_with_unknown_reported_apart(tmp_path, capsys):
    path = tmp_path / "race.parquet"
    frame = frame_with_race()
    frame.write_parquet(path)
    assert main(["leaderboard", "--predictions", f"run={path}", "--groups", "sex,race,sex*race", "--rank-by",
                 "underdiagnosis_gap_race", "--format", "json", *FAST]) == 0
    captured = capsys.readouterr()
    run = json.loads(captured.out)["runs"][0]
    assert set(run["groups"]["race"]) == set(RACES)  # no "None" / unknown level
    test = frame.filter(pl.col("split") == "test")
    assert sum(level["count"] for level in run["groups"]["race"].values()) == test.height - test["race"].null_count()
    assert {"F,Black", "M,White"} <= set(run["groups"]["sex_race"])
    assert run["figures"]["underdiagnosis_gap_race"]["value"] > 0.3
    assert f"race unknown for {test['race'].null_count()} of {test.height} test images" in captured.err.replace("\n", " ")


def test_a_file_without_race_says_it_has_no_values(tmp_path, capsys):
    path = tmp_path / "norace.csv"
    frame_with_race().drop("race").write_csv(path)
    assert main(["leaderboard", "--predictions", f"run={path}", "--groups", "sex,race", "--rank-by", "macro_auc", *FAST]) == 0
    assert "no values for race" in capsys.readouterr().err


def test_race_values_outside_the_groups_are_refused():
    frame = frame_with_race().with_columns(race=pl.lit("Caucasian"))
    with pytest.raises(BenchError, match=r"race is 'Caucasian' at row 0 .*use one of \['White', 'Black'"):
        validate_predictions(frame, source="x")
