"""The protected attribute of `--protect`: one group code per task row, for the mitigation heads and fine-tuning.

    groups = protected_groups(frame, "sex*age")     # levels ("F,<60", "F,>=60", ...), one code per row
    groups.codes[rows], groups.levels, groups.summary(positions)

Attributes are those the fairness engine groups by (`fairness.groups`): `sex`, `age` (< 60 / >= 60), `race` and
`insurance` where the dataset records them, and intersections written with `*` (`sex*age`, `sex*race`). A row
whose value is unknown belongs to one more group, "unknown", so every row has a group (the heads need one for
every training row, and the threshold heads for every test row). An attribute the dataset does not record at
all (race on NIH) is refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import BenchError

UNKNOWN = "unknown"
ERR_NO_VALUES = "{dataset} has no {attribute} values{detail}; {option} takes an attribute it records: {known}"


@dataclass(frozen=True)
class ProtectedGroups:
    """`attribute` as given (e.g. "sex*age"), its `levels` (the last may be "unknown") and each row's `codes`."""

    attribute: str
    levels: tuple[str, ...]
    codes: np.ndarray

    def summary(self, positions: dict) -> dict:
        """{level: {split: rows}} for the run record (`positions`: split -> row positions)."""
        return {level: {split: int((self.codes[rows] == code).sum()) for split, rows in positions.items()}
                for code, level in enumerate(self.levels)}

    def encode(self, frame, *, dataset: str = "the dataset") -> np.ndarray:
        """Codes of another frame's rows on these levels (another dataset's test rows); BenchError for a level
        these groups do not have."""
        other = protected_groups(frame, self.attribute, dataset=dataset)
        index = {level: code for code, level in enumerate(self.levels)}
        unseen = [level for level in other.levels if level not in index and (other.codes == other.levels.index(level)).any()]
        if unseen:
            raise BenchError(f"{dataset} has {self.attribute} group(s) {unseen} that the training data does not have; "
                             "the mitigation heads cannot place them")
        mapping = np.array([index.get(level, -1) for level in other.levels], dtype=np.int64)
        return mapping[other.codes]


def recorded_attributes(frame) -> list[str]:
    """The base attributes with at least one value in `frame`: sex, age, race, insurance."""
    return [name for name in ("sex", "age", "race", "insurance")
            if name in frame.columns and frame[name].null_count() < frame.height]


def protected_groups(frame, attribute: str, *, dataset: str = "the dataset", option: str = "--protect") -> ProtectedGroups:
    """The groups of `attribute` ("sex", "age", "race", "insurance", or an intersection "sex*age") over the
    rows of `frame` (a task frame with the manifest's columns); `option` names the option in the refusal."""
    from fairness.groups import build_groups, parse_attribute_list

    known = recorded_attributes(frame)
    (name,) = parse_attribute_list([attribute.strip()])
    parts = name.split("_")
    missing = [part for part in parts if part not in known]
    if not parts or missing:
        detail = "" if missing and missing[0] in ("sex", "age", "race", "insurance") else " (not an attribute)"
        raise BenchError(ERR_NO_VALUES.format(dataset=dataset, attribute=(missing or [attribute])[0], detail=detail,
                                              option=option, known=", ".join(known) + " and intersections such as sex*age"))
    columns = {part: frame[part].to_list() for part in parts if part in ("race", "insurance")}
    groups = build_groups(n=frame.height, sex=frame["sex"].to_list() if "sex" in parts else None,
                          age=frame["age"].to_list() if "age" in parts else None, columns=columns, attributes=(name,))
    grouping = groups.attributes[0]
    level_of_atom = np.full(groups.n_atoms, -1, dtype=np.int64)
    for level, members in enumerate(grouping.members):
        level_of_atom[members] = level
    codes = level_of_atom[groups.atom_of_image]
    present = [level for level in range(len(grouping.levels)) if (codes == level).any()]
    levels = [grouping.levels[level] for level in present]
    remap = np.full(len(grouping.levels), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], len(levels))
    if (codes == len(levels)).any():
        levels.append(UNKNOWN)
    return ProtectedGroups(attribute=attribute, levels=tuple(levels), codes=codes.astype(np.int64))


def check_protect(specs, protect: str | None, inputs) -> None:
    """One line, before anything is fitted, for a mitigation head without `--protect`, a constrained head on
    a single-label task, or a head that thresholds each group with a group that has test images but no val ones
    (`inputs`: the pipeline's HeadInputs)."""
    task_kind = inputs.task.kind
    grouped = [spec.name for spec in specs if "groups" in spec.needs]
    if grouped and not protect:
        raise BenchError(f"{', '.join(grouped)} mitigate(s) a protected attribute: give --protect ATTRIBUTE "
                         "(sex, age, race, insurance or an intersection such as sex*age)")
    constrained = [spec.name for spec in specs if spec.kind == "constrained"]
    if constrained and task_kind == "single":
        raise BenchError(f"{', '.join(constrained)}: fairlearn's constraints are binary, so these heads handle "
                         "multi-label and binary tasks (one problem per class), not single-label tasks such as "
                         "nih6x200; use the reweighting, resampling or GroupDRO heads there")
    if any("test_groups" in spec.needs for spec in specs):
        positions = inputs.positions
        check_levels_known(inputs.groups, positions["val"], np.concatenate([positions["val"], positions["test"]]))


def check_levels_known(groups: ProtectedGroups, fitted_rows: np.ndarray, predicted_rows: np.ndarray) -> None:
    """Heads that threshold each group need every group of the predicted rows among the rows they fit on."""
    missing = sorted(set(groups.codes[predicted_rows].tolist()) - set(groups.codes[fitted_rows].tolist()))
    if missing:
        names = [groups.levels[code] for code in missing]
        raise BenchError(f"{groups.attribute} group(s) {names} have test images but no val images, so no thresholds "
                         "can be fitted for them; protect a coarser attribute")


def group_arguments(spec, groups: ProtectedGroups | None, train: np.ndarray, val: np.ndarray) -> dict:
    """The `fit` keyword arguments of a head that learns with the groups (none for the others)."""
    if groups is None or "groups" not in spec.needs:
        return {}
    return {"groups": groups.codes[train], "groups_val": groups.codes[val]}


def mitigation_details(spec, groups: ProtectedGroups | None, positions: dict) -> dict:
    """What a mitigation run records beside its predictions: the attribute, its groups per split, whether the
    attribute is needed at test time, the method's source."""
    if groups is None or spec.mitigation is None:
        return {}
    return {"mitigation": {
        "protect": groups.attribute, "levels": list(groups.levels), "groups": groups.summary(positions),
        "needs_attribute_at_test": "test_groups" in spec.needs, "plain_method": spec.mitigation.plain,
        "plain_hyperparameters": {}, "gap": spec.mitigation.gap, "utility": spec.mitigation.utility,
        "source": spec.mitigation.source,
    }}
