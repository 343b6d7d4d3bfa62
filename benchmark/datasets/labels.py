"""The label codings of CheXpert and MIMIC-CXR, the uncertain-label policies, and the `common` name map.

Both releases code each of the 14 observations (CheXpert labeler or NegBio) as `1.0` (positive), `0.0`
(negative), `-1.0` (uncertain) or blank (not mentioned). We read:

- `1.0` -> 1, `0.0` -> 0;
- blank -> 0: "not mentioned" is taken as absent, as the releases' authors and most of the literature do
  (counted per class in the report, so the share of such negatives is visible);
- `-1.0` -> the `--uncertain` policy: `zeros` (U-Zeros) -> 0, `ones` (U-Ones) -> 1, `ignore` (U-Ignore) -> null,
  i.e. masked: left out of that class's loss and metrics, never counted as a negative.

Anything else is an error naming the file, row, column and value.

The `common` task's classes are shared by NIH, CheXpert and MIMIC; which manifest column each dataset fills is
data (`common_labels.json`), e.g. NIH's "Effusion" and CheXpert's and MIMIC's "Pleural Effusion".
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.schema import ALL_LABEL_COLUMNS, CHEXPERT_LABELS

OFFICIAL_OBSERVATIONS: dict[str, str] = {column.replace("_", " "): column for column in CHEXPERT_LABELS}
"""The releases' column names ("Pleural Effusion") -> manifest columns ("Pleural_Effusion")."""
UNCERTAIN_POLICIES: dict[str, int | None] = {"zeros": 0, "ones": 1, "ignore": None}
DEFAULT_UNCERTAIN = "zeros"
CODES: dict[str, int] = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1}
BLANK = 2
COMMON_FILE = Path(__file__).with_name("common_labels.json")
EXAMPLES = 5


def check_policy(policy: str) -> int | None:
    """The value an uncertain label becomes under `policy` (None = masked); BenchError for an unknown policy."""
    if policy not in UNCERTAIN_POLICIES:
        raise BenchError(f"--uncertain {policy!r} is not one of {', '.join(UNCERTAIN_POLICIES)} (zeros: U-Zeros, "
                         "ones: U-Ones, ignore: masked, left out of that class's loss and metrics).")
    return UNCERTAIN_POLICIES[policy]


def _coded(official: str) -> pl.Expr:
    """1, 0, -1 (uncertain), BLANK, or null for a value outside the coding."""
    text = pl.col(official).str.strip_chars()
    return (pl.when(text.is_null() | (text == "")).then(pl.lit(BLANK, dtype=pl.Int8))
            .otherwise(text.replace_strict(CODES, default=None, return_dtype=pl.Int8)))


def decode_observations(rows: pl.DataFrame, *, policy: str, source: Path | str,
                        names: dict[str, str] = OFFICIAL_OBSERVATIONS) -> tuple[pl.DataFrame, dict]:
    """The observation columns of `rows` (strings, official names, plus `row`: the line in `source`) as manifest
    label columns (Int8 1/0/null) under the uncertain `policy`, and per-class counts of what was read."""
    uncertain_value = check_policy(policy)
    coded = rows.select("row", *[_coded(official).alias(column) for official, column in names.items()])
    for official, column in names.items():
        bad = coded.filter(pl.col(column).is_null())
        if bad.height:
            raw = rows.filter(pl.col("row").is_in(bad["row"].head(EXAMPLES).to_list()))
            shown = "; ".join(f"row {r}: {v!r}" for r, v in raw.select("row", official).iter_rows())
            raise BenchError(f"{source}: column {official!r} holds values that are not 1.0, 0.0, -1.0 or blank: "
                             f"{shown}{f' ... ({bad.height} rows in all)' if bad.height > EXAMPLES else ''}. "
                             "Re-download the file; the labels must be as released.")
    summary = coded.select(*[
        pl.struct(positive=(pl.col(c) == 1).sum(), negative=(pl.col(c) == 0).sum(),
                  uncertain=(pl.col(c) == -1).sum(), blank=(pl.col(c) == BLANK).sum()).alias(c)
        for c in names.values()
    ]).row(0, named=True)
    counts = {column: {key: int(value) for key, value in values.items()} for column, values in summary.items()}
    labels = coded.select("row", *[
        pl.when(pl.col(c) == -1).then(pl.lit(uncertain_value, dtype=pl.Int8))
        .when(pl.col(c) == BLANK).then(pl.lit(0, dtype=pl.Int8)).otherwise(pl.col(c)).alias(c)
        for c in names.values()
    ])
    return labels, counts


@lru_cache(maxsize=1)
def common_map() -> dict[str, dict[str, str]]:
    """The shared label set across NIH, CheXpert and MIMIC: class -> {dataset: manifest column} (common_labels.json)."""
    data = json.loads(COMMON_FILE.read_text())
    classes = data["classes"]
    unknown = sorted({c for per in classes.values() for c in per.values()} - set(ALL_LABEL_COLUMNS))
    if unknown:
        raise BenchError(f"{COMMON_FILE}: columns {unknown} are not manifest label columns ({', '.join(ALL_LABEL_COLUMNS)}).")
    return classes


def common_classes() -> tuple[str, ...]:
    return tuple(common_map())


def prompt_classes(labels: tuple[str, ...]) -> tuple[str, ...]:
    """The classes a store of a dataset with label columns `labels` embeds prompts for: its own labels, then the
    `common` classes it lacks (so that zero-shot works for every task of the dataset)."""
    return tuple(labels) + tuple(name for name in common_classes() if name not in labels)
