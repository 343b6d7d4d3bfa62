"""MIMIC-CXR's demographics from MIMIC-IV: sex and age from `patients`, race and insurance from `admissions`.

MIMIC-IV (v2.x: `hosp/patients.csv.gz`, `hosp/admissions.csv.gz`; v1.0: the same under `core/`) records
`gender`, `anchor_age` (the age in the patient's shifted `anchor_year`; 89 and over are written as 91) per
patient, and `race` (`ethnicity` in v1.0) and `insurance` per admission. The age at a study is
`anchor_age + (year of StudyDate - anchor_year)`: MIMIC-CXR's dates are shifted by the same per-patient offset
as MIMIC-IV's, so the difference of years is real.

A patient's admissions may disagree (a race recorded differently, insurance that changed). The rule, applied
to race and to insurance separately: the known values (unknown / declined / blank ignored) of all the
patient's admissions are counted, and the most frequent wins; a tie between different values leaves the
patient unknown. How many patients disagreed, were resolved by majority, or were left unknown by a tie is
reported. Patients without admissions (e.g. seen only in the emergency department) have unknown race and
insurance; patients without a `patients` row have unknown sex and age.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.datasets.attributes import attribute_map, map_values
from benchmark.datasets.common import LoadOptions, fail_rows, find_file, read_table

PATIENT_COLUMNS = ("subject_id", "gender", "anchor_age", "anchor_year")
SUBFOLDERS = ("hosp", "core", "")
GENDERS = {"F": "F", "M": "M", "": None}
MAX_AGE = 120.0


def mimic_iv_files(folder: Path) -> tuple[Path, Path]:
    """(patients, admissions) files of a MIMIC-IV folder (hosp/, core/ or the folder itself)."""
    folders = [folder / sub if sub else folder for sub in SUBFOLDERS]
    patients = find_file(folders, ("patients.csv.gz", "patients.csv"))
    admissions = find_file(folders, ("admissions.csv.gz", "admissions.csv"))
    if patients is None or admissions is None:
        missing = " and ".join(name for name, path in (("patients", patients), ("admissions", admissions)) if path is None)
        raise BenchError(f"--mimic-iv {folder}: no {missing}.csv.gz in hosp/, core/ or the folder itself. Pass the MIMIC-IV "
                         "folder (e.g. physionet.org/files/mimiciv/2.2).")
    return patients, admissions


def read_demographics(folder: Path, options: LoadOptions, report: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per patient: subject_id, sex, anchor_age, anchor_year; per patient: subject_id, race, insurance)."""
    patients_path, admissions_path = mimic_iv_files(Path(folder).expanduser())
    report["mimic_iv"] = {"patients": str(patients_path), "admissions": str(admissions_path)}
    return _patients(patients_path), _admissions(admissions_path, options, report)


def _patients(path: Path) -> pl.DataFrame:
    rows = read_table(path, PATIENT_COLUMNS, what="MIMIC-IV patients table")
    fail_rows(path, rows.filter(~pl.col("subject_id").str.contains(r"^\d+$")), "subject_id", "subject ids that are not numbers",
              "Re-download the table.")
    fail_rows(path, rows.filter(pl.col("subject_id").is_duplicated()), "subject_id", "patients listed twice", "Keep one row per patient.")
    gender = rows["gender"].fill_null("").str.strip_chars().str.to_uppercase()
    fail_rows(path, rows.filter(~gender.is_in(list(GENDERS))), "gender", "unknown gender values", "Use F, M or blank.")
    anchor_age = rows["anchor_age"].str.strip_chars().cast(pl.Float64, strict=False)
    anchor_year = rows["anchor_year"].str.strip_chars().cast(pl.Int64, strict=False)
    for column, values in (("anchor_age", anchor_age), ("anchor_year", anchor_year)):
        given = rows[column].is_not_null() & (rows[column].str.strip_chars() != "")
        fail_rows(path, rows.filter(values.is_null() & given), column, f"{column} values that are not numbers",
                  "Re-download the table.")
    return pl.DataFrame({"subject_id": rows["subject_id"], "sex": gender.replace_strict(GENDERS, return_dtype=pl.Utf8),
                         "anchor_age": anchor_age, "anchor_year": anchor_year})


def _admissions(path: Path, options: LoadOptions, report: dict) -> pl.DataFrame:
    header = read_table(path, ("subject_id", "insurance"), what="MIMIC-IV admissions table")
    race_column = "race" if "race" in header.columns else "ethnicity" if "ethnicity" in header.columns else None
    if race_column is None:
        read_table(path, ("subject_id", "insurance", "race"), what="MIMIC-IV admissions table (race; ethnicity before v2.0)")
    race, race_counts = map_values(header, race_column, attribute_map("race", "mimic", options.race_map), source=path, what="race")
    insurance, insurance_counts = map_values(header, "insurance", attribute_map("insurance", "mimic", options.race_map),
                                             source=path, what="insurance")
    report["race_map"] = {race_column: race_counts, "insurance": insurance_counts}
    admissions = pl.DataFrame({"subject_id": header["subject_id"].str.strip_chars(), "race": race, "insurance": insurance})
    per_race, race_rule = _per_patient(admissions, "race")
    per_insurance, insurance_rule = _per_patient(admissions, "insurance")
    report["admissions_rule"] = {
        "rule": "most frequent known value over the patient's admissions; a tie leaves the patient unknown",
        "patients_with_admissions": admissions["subject_id"].n_unique(),
        "race": race_rule, "insurance": insurance_rule,
    }
    for name, rule in (("race", race_rule), ("insurance", insurance_rule)):
        if rule["disagreeing"]:
            report["notes"].append(f"{rule['disagreeing']} patients' admissions disagree on {name}: {rule['majority']} "
                                   f"resolved by majority, {rule['tied']} left unknown (tie)")
    return per_race.join(per_insurance, on="subject_id", how="full", coalesce=True)


def _per_patient(admissions: pl.DataFrame, column: str) -> tuple[pl.DataFrame, dict]:
    """One value per patient by the majority rule, and how many patients disagreed / were resolved / tied."""
    counts = admissions.filter(pl.col(column).is_not_null()).group_by("subject_id", column).len()
    per = counts.group_by("subject_id").agg(
        values=pl.len(),
        ties=(pl.col("len") == pl.col("len").max()).sum(),
        top=pl.col(column).sort_by(["len", column], descending=[True, False]).first(),
    )
    rule = {
        "disagreeing": int((per["values"] > 1).sum()),
        "majority": int(((per["values"] > 1) & (per["ties"] == 1)).sum()),
        "tied": int((per["ties"] > 1).sum()),
    }
    chosen = per.select("subject_id", pl.when(pl.col("ties") == 1).then(pl.col("top")).alias(column))
    every = admissions.select("subject_id").unique()
    return every.join(chosen, on="subject_id", how="left"), rule


def study_age(anchor_age: pl.Expr, anchor_year: pl.Expr, study_date: pl.Expr) -> pl.Expr:
    """Age at the study: anchor_age + (StudyDate's year - anchor_year); anchor_age when the date is unknown;
    null outside 0-120."""
    year = (study_date.cast(pl.Int64, strict=False) // 10000)
    age = pl.when(year.is_not_null() & anchor_year.is_not_null()).then(anchor_age + (year - anchor_year)).otherwise(anchor_age)
    return pl.when((age >= 0) & (age <= MAX_AGE)).then(age.cast(pl.Float64))
