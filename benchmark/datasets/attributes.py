"""Race, ethnicity and insurance strings of each release -> the benchmark's groups, through a data file.

`attribute_maps.json` maps every raw string a release is known to use to a group of `RACES` / `INSURANCES`,
or to null (unknown: declined, unable to obtain, not recorded; never merged into a group). A string the map
does not know is an error naming the file, column, rows and value: a new release or a local export may code
race differently, and guessing would put patients in the wrong group. `--race-map FILE` adds or replaces
entries with a file of the same shape.

CheXpert records race (`PRIMARY_RACE`) and ethnicity (`ETHNICITY`) separately; MIMIC-IV mixes them in one field
(`HISPANIC/LATINO - ...` is a race there). To give both datasets the same groups, a Hispanic/Latino ethnicity
(or a ", Hispanic" race string) maps CheXpert patients to Hispanic/Latino, as MIMIC does.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import polars as pl

from benchmark.core.errors import BenchError
from benchmark.core.schema import ATTRIBUTE_COLUMNS

MAPS_FILE = Path(__file__).with_name("attribute_maps.json")
KINDS = ("race", "ethnicity", "insurance")
EXAMPLES = 5


def _normal(text: str) -> str:
    return " ".join(str(text).split()).upper()


@lru_cache(maxsize=8)
def _read(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BenchError(f"{path}: cannot read the race/insurance map ({error}).") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a JSON object with keys among {list(KINDS)}.")
    for kind in set(data) - {"description"}:
        if kind not in KINDS or not isinstance(data[kind], dict):
            raise BenchError(f"{path}: unknown key {kind!r}; the map has {list(KINDS)}, each {{dataset: {{raw: group}}}}.")
        allowed = ATTRIBUTE_COLUMNS["race" if kind == "ethnicity" else kind]
        for dataset, table in data[kind].items():
            if not isinstance(table, dict):
                raise BenchError(f"{path}: {kind}.{dataset} is {table!r}, not a table of raw strings; the map's shape is "
                                 f'{{"{kind}": {{"chexpert" or "mimic": {{"RAW STRING": "GROUP" or null}}}}}}.')
            wrong = {raw: group for raw, group in table.items() if group is not None and group not in allowed}
            if wrong:
                raise BenchError(f"{path}: {kind}.{dataset} maps to unknown groups {wrong}; use one of {list(allowed)} or null.")
    return data


def attribute_map(kind: str, dataset: str, extra: str | os.PathLike | None = None) -> dict[str, str | None]:
    """The map of one kind ("race", "ethnicity", "insurance") for one dataset, keys normalised (upper case,
    single spaces); entries of `extra` (a file of the same shape) replace or add to the packaged ones."""
    table = {_normal(raw): group for raw, group in _read(str(MAPS_FILE)).get(kind, {}).get(dataset, {}).items()}
    if extra is not None:
        table.update({_normal(raw): group for raw, group in _read(str(Path(extra))).get(kind, {}).get(dataset, {}).items()})
    return table


def map_values(frame: pl.DataFrame, column: str, table: dict[str, str | None], *, source: Path | str,
               what: str, null_means: str = "unknown") -> tuple[pl.Series, dict]:
    """The groups of `frame[column]` (raw strings; `frame` has a `row` column: the line or row in `source`) and
    the counts of each raw string with its group (`null_means` names a null group in the counts). Blank values
    are null; an unlisted value is a BenchError."""
    raw = frame[column].cast(pl.Utf8).str.strip_chars()
    key = _normalise(raw)
    known = key.is_null() | (key == "") | key.is_in(list(table))
    if not bool(known.all()):
        unknown = frame.filter(~known).select("row", pl.col(column).alias("value"))
        values = unknown["value"].unique(maintain_order=True).to_list()
        shown = "; ".join(f"{value!r} (rows {', '.join(str(r) for r in unknown.filter(pl.col('value') == value)['row'].head(3))})"
                          for value in values[:EXAMPLES])
        raise BenchError(
            f"{source}: unknown {what} value(s) in column {column!r}: {shown}{' ...' if len(values) > EXAMPLES else ''}. "
            f"Add them to the map ({MAPS_FILE.name} in benchmark/datasets/, or your own file passed with --race-map FILE) "
            "as a group or as null (unknown)."
        )
    groups = key.replace_strict(table, default=None, return_dtype=pl.Utf8)
    counted = pl.DataFrame({"raw": raw.fill_null(""), "group": groups}).group_by("raw", "group").len().sort("len", descending=True)
    counts = {(r or "(blank)"): {"group": g or null_means, "count": int(n)} for r, g, n in counted.iter_rows()}
    return groups.alias(column), counts


def _normalise(raw: pl.Series) -> pl.Series:
    return raw.str.replace_all(r"\s+", " ").str.strip_chars().str.to_uppercase()
