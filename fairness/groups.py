"""Groups of images: sex, age bands, their intersection, or any column — as unions of "atoms".

An atom is one combination of the base attributes' levels (for example sex "F" x age "<60"); a missing
value is its own level, so every image belongs to exactly one atom. Every group the engine reports is a
union of atoms: "F" is the atoms with sex F, "F,<60" one atom, and "overall" all atoms. Because the
statistics the engine needs (confusion counts, calibration-bin sums, rank sums) add up over atoms, they
are computed once per atom and summed into groups.

Attribute names used by the figures: `sex`, `age`, and `sex_age` for their intersection (written
`sex*age` on the command line). Any other column is its own attribute under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.schema import AGE_THRESHOLD, SEXES
DECADE_CUTS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
SEED_AGE_ATTRIBUTE = "age_seed"
"""The seed study's overlapping age groups ([0, 60] and [60, 150], age 60 in both) used by `seed_exact`."""

ERR_LENGTH = "{name} has {got} values but there are {n} images; give one value per image"
ERR_UNKNOWN_ATTRIBUTE = (
    "unknown group attribute {name!r}; known: {known}. Use sex, age, sex*age or a column you passed in `columns`"
)
ERR_AGE_CUTS = "age cut points must be strictly increasing positive numbers, got {cuts}"
ERR_SEX = "sex is {value!r} at image {row}; use 'F', 'M' or None (unknown)"
ERR_NO_ATTRIBUTES = "no group attributes requested; ask for at least one of sex, age, sex*age or a column"


@dataclass(frozen=True)
class Attribute:
    """One grouping of the images: its name, its level names and, per level, the atoms it unites."""

    name: str
    levels: tuple[str, ...]
    members: np.ndarray  # bool [L, K]: level l contains atom k

    def level_index(self, level: str) -> int:
        return self.levels.index(level)


@dataclass(frozen=True)
class GroupSet:
    """Atoms of the images plus the attributes (groupings) built on them.

    `atom_of_image` [n] int, `atom_codes` [K, A] int per base attribute (-1 = missing),
    `base_names` the base attributes, `base_levels` their level names, `attributes` the groupings.
    """

    atom_of_image: np.ndarray
    atom_codes: np.ndarray
    base_names: tuple[str, ...]
    base_levels: tuple[tuple[str, ...], ...]
    attributes: tuple[Attribute, ...]
    image_codes: np.ndarray = field(repr=False)  # [n, A] int per base attribute, -1 = missing
    radix: np.ndarray = field(repr=False)  # [A] levels + 1 per base attribute

    @property
    def n_atoms(self) -> int:
        return int(self.atom_codes.shape[0])

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise BenchError(
            ERR_UNKNOWN_ATTRIBUTE.format(name=name, known=", ".join(a.name for a in self.attributes))
        )

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)

    def group_table(self) -> list[tuple[str, str, np.ndarray]]:
        """Every reported group as (attribute, level, atom mask), "overall" first."""
        rows = [("overall", "all", np.ones(self.n_atoms, dtype=bool))]
        for attribute in self.attributes:
            for level, mask in zip(attribute.levels, attribute.members):
                rows.append((attribute.name, level, mask))
        return rows


def age_levels(cuts) -> tuple[str, ...]:
    """Level names for ages cut at `cuts`: "<c0", "c0-c1", ..., ">=c_last"."""
    cuts = list(cuts)
    names = [f"<{cuts[0]:g}"]
    names += [f"{a:g}-{b:g}" for a, b in zip(cuts[:-1], cuts[1:])]
    names.append(f">={cuts[-1]:g}")
    return tuple(names)


def age_codes(age, *, cuts=(AGE_THRESHOLD,)) -> np.ndarray:
    """Band index of each age (years) for the cut points (band i holds cuts[i-1] <= age < cuts[i]); -1 if missing."""
    cuts = np.asarray(list(cuts), dtype=np.float64)
    if cuts.size == 0 or np.any(cuts <= 0) or np.any(np.diff(cuts) <= 0):
        raise BenchError(ERR_AGE_CUTS.format(cuts=cuts.tolist()))
    age = np.asarray(age, dtype=np.float64)
    codes = np.searchsorted(cuts, age, side="right").astype(np.int64)
    codes[~np.isfinite(age)] = -1
    return codes


def resolve_age_cuts(age_bins) -> tuple[float, ...]:
    """"binary" (< 60 / >= 60, the default), "decades", or a sequence of cut points."""
    if age_bins is None or age_bins == "binary":
        return (AGE_THRESHOLD,)
    if age_bins == "decades":
        return DECADE_CUTS
    if isinstance(age_bins, str):
        try:
            age_bins = [float(x) for x in age_bins.split(",") if x.strip()]
        except ValueError:
            raise BenchError(ERR_AGE_CUTS.format(cuts=age_bins)) from None
    return tuple(float(x) for x in age_bins)


def _category_codes(values, name: str, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    values = list(values)
    if len(values) != n:
        raise BenchError(ERR_LENGTH.format(name=name, got=len(values), n=n))
    present = sorted({str(v) for v in values if v is not None and v == v})
    index = {level: i for i, level in enumerate(present)}
    codes = np.array([index[str(v)] if (v is not None and v == v) else -1 for v in values], dtype=np.int64)
    return codes, tuple(present)


def parse_attribute_list(text) -> tuple[str, ...]:
    """"sex,age,sex*age" -> ("sex", "age", "sex_age"); any other name stays as it is."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
    else:
        parts = list(text)
    return tuple(p.replace("*", "_") if "*" in p else p for p in parts)


def build_groups(
    *,
    n: int,
    sex=None,
    age=None,
    columns: dict | None = None,
    attributes=("sex", "age", "sex_age"),
    age_bins="binary",
    seed_exact: bool = False,
) -> GroupSet:
    """Build the atoms and groupings for `n` images.

    `sex` ("F"/"M"/None per image), `age` (years, NaN/None when unknown), `columns` (name -> values, any
    other attribute). `attributes` names the groupings to report; an intersection is written "a_b" or
    "a*b" (for example "sex_age"). `age_bins`: "binary" (< 60 / >= 60), "decades" or cut points.
    `seed_exact` adds the seed study's overlapping age groups `age_seed` ([0, 60] and [60, inf)).
    """
    attributes = parse_attribute_list(attributes)
    if not attributes:
        raise BenchError(ERR_NO_ATTRIBUTES)
    sources = _sources(n, sex=sex, age=age, columns=columns, age_bins=age_bins, seed_exact=seed_exact)
    needed: list[str] = []
    for attribute in attributes:
        for part in _parts(attribute, sources):
            if part not in needed:
                needed.append(part)
    if seed_exact and "age" in needed:
        needed.append("_age_seed")

    base_names = tuple(needed)
    base_levels = tuple(sources[name][1] for name in base_names)
    radix = np.array([len(levels) + 1 for levels in base_levels], dtype=np.int64)
    image_codes = np.stack([sources[name][0] for name in base_names], axis=1).reshape(n, len(base_names))
    grids = np.meshgrid(*[np.arange(-1, len(levels)) for levels in base_levels], indexing="ij")
    atom_codes = np.stack([g.reshape(-1) for g in grids], axis=1)
    built = [_grouping(attribute, sources, base_names, atom_codes) for attribute in attributes]
    if seed_exact and "age" in needed:
        band = atom_codes[:, base_names.index("_age_seed")]
        members = np.array([(band == 0) | (band == 1), (band == 1) | (band == 2)], dtype=bool)
        built.append(Attribute(SEED_AGE_ATTRIBUTE, ("[0,60]", "[60,inf)"), members))
    return GroupSet(
        atom_of_image=atoms_from_codes(image_codes, radix).astype(np.int64),
        atom_codes=atom_codes.astype(np.int64),
        base_names=base_names,
        base_levels=base_levels,
        attributes=tuple(built),
        image_codes=image_codes.astype(np.int64),
        radix=radix,
    )


Sources = dict[str, tuple[np.ndarray, tuple[str, ...]]]
"""Base attribute -> (code of each image, -1 = missing; level names)."""


def _sources(n: int, *, sex, age, columns, age_bins, seed_exact: bool) -> Sources:
    sources: Sources = {}
    if sex is not None:
        sex_values = list(sex)
        if len(sex_values) != n:
            raise BenchError(ERR_LENGTH.format(name="sex", got=len(sex_values), n=n))
        for row, value in enumerate(sex_values):
            if value not in SEXES and value is not None and value == value:
                raise BenchError(ERR_SEX.format(value=value, row=row))
        index = {sex: code for code, sex in enumerate(SEXES)}
        codes = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in sex_values])
        sources["sex"] = (codes.astype(np.int64), SEXES)
    if age is not None:
        age_array = np.array([np.nan if v is None else v for v in age], dtype=np.float64)
        if age_array.shape[0] != n:
            raise BenchError(ERR_LENGTH.format(name="age", got=age_array.shape[0], n=n))
        cuts = resolve_age_cuts(age_bins)
        sources["age"] = (age_codes(age_array, cuts=cuts), age_levels(cuts))
        if seed_exact:
            seed_bands = np.searchsorted([AGE_THRESHOLD, np.nextafter(AGE_THRESHOLD, np.inf)], age_array, side="right")
            seed_bands = np.where(np.isfinite(age_array), seed_bands, -1).astype(np.int64)
            sources["_age_seed"] = (seed_bands, ("<60", "=60", ">60"))
    for name, values in (columns or {}).items():
        sources[name] = _category_codes(values, name, n)
    return sources


def _parts(attribute: str, sources: Sources) -> list[str]:
    """The base attributes of a grouping ("sex_age" -> sex, age); BenchError naming an unknown one."""
    parts = attribute.split("_") if attribute not in sources else [attribute]
    for part in parts:
        if part not in sources:
            raise BenchError(ERR_UNKNOWN_ATTRIBUTE.format(name=attribute, known=", ".join(sources) or "none"))
    return parts


def _grouping(attribute: str, sources: Sources, base_names: tuple[str, ...], atom_codes: np.ndarray) -> Attribute:
    """One grouping: a level per combination of its base attributes' levels, as a union of atoms."""
    parts = _parts(attribute, sources)
    positions = [base_names.index(p) for p in parts]
    level_lists = [sources[p][1] for p in parts]
    combos = np.array(np.meshgrid(*[np.arange(len(levels)) for levels in level_lists], indexing="ij"))
    combos = combos.reshape(len(parts), -1).T
    names, members = [], []
    for combo in combos:
        names.append(",".join(level_lists[i][c] for i, c in enumerate(combo)))
        members.append(np.all(atom_codes[:, positions] == combo[None, :], axis=1))
    return Attribute(attribute, tuple(names), np.array(members, dtype=bool).reshape(len(names), -1))


def atoms_from_codes(codes: np.ndarray, radix: np.ndarray) -> np.ndarray:
    """Atom index of base-attribute codes [..., A] (-1 = missing): a mixed-radix number over the levels."""
    index = np.zeros(codes.shape[:-1], dtype=np.int64)
    for position, base in enumerate(radix):
        index = index * base + (codes[..., position] + 1)
    return index
