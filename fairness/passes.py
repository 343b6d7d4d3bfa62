"""The three passes of an evaluation over one prepared run: the point values, the bootstrap replicates and
the permutation tests. Each is vectorised over replicates (see `fairness.stats`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from fairness.figures import GroupIndex, compute_figures, group_brier
from fairness.groups import GroupSet, atoms_from_codes
from fairness.metrics import GroupMetrics, group_metrics
from fairness.registry import permuted_attribute
from fairness.resampling import (
    bootstrap_counts,
    first_index,
    permutation_p_value,
    permuted_patient_codes,
    stratum_codes,
)
from fairness.reweight import Reweighting
from fairness.stats import Units, fixed_atom_stats, image_features, rank_bins, sum_features, variable_atom_stats

CHUNK_ELEMENTS = 25_000_000
GROUP_METRICS = ("utility", "auc", "balanced_accuracy", "average_precision", "accuracy", "f1", "precision", "tpr",
                 "fpr", "tnr", "fnr", "selection_rate", "ece", "ece_binned", "brier")
MACRO = ("auc", "f1", "precision", "tpr", "fpr", "tnr", "fnr", "selection_rate")


class ResamplingPlan:
    """Bootstrap draws shared by the runs evaluated on the same test set (a leaderboard's runs).

    The draws depend only on the patients, their strata, the seed and the number of replicates, so runs
    on the same test images reuse them: faster, and their replicates are paired.
    """

    def __init__(self):
        self._counts: dict[str, np.ndarray] = {}

    def counts(self, key: str, strata: np.ndarray, *, n_boot: int, seed: int) -> np.ndarray:
        if key not in self._counts:
            self._counts[key] = bootstrap_counts(strata, n_boot=n_boot, rng=np.random.default_rng([seed, 0]))
        return self._counts[key]


class PreparedRun:
    """The arrays of one evaluation, shared by the point, bootstrap and permutation passes."""

    def __init__(self, *, y, p, decisions, groups: GroupSet, patient_index, n_patients, kind, classes, attributes,
                 seed_exact, reweighting: Reweighting | None = None, stratify_permutations: bool = True,
                 known: np.ndarray | None = None):
        self.y, self.p, self.decisions, self.groups, self.kind = y, p, decisions, groups, kind
        self.classes, self.attributes, self.seed_exact = classes, attributes, seed_exact
        self.stratify_permutations, self.reweighting, self.known = stratify_permutations, reweighting, known
        self.index = GroupIndex(groups)
        self.masks = np.array([mask for _, _, mask in self.index.table])
        multipliers = self.multipliers(groups.atom_of_image)
        features = image_features(y, p, decisions, kind, multipliers, known)
        self.units = Units.build(patient_index, groups.atom_of_image, features,
                                 None if multipliers is None else multipliers[0])
        self._by_atom: dict = {}
        self.patient_index, self.n_patients = patient_index, n_patients
        self.first_image_of_unit = first_index(self.units.unit_of_image, self.units.atom.size)
        self.first_image_of_patient = first_index(patient_index, n_patients)
        self._rank_bins = (None, None)

    def multipliers(self, atom_of_image) -> tuple | None:
        """Fixed image weights (per class [n, C], per calibration channel [n, K], per image [n]) for images in
        these atoms: the prevalence reweighting's, times 0 for a masked entry (left out of its class's figures);
        None when neither applies."""
        weights = self.reweighting.multipliers(atom_of_image) if self.reweighting else None
        if self.known is None:
            return weights
        n = self.y.shape[0]
        by_class, _, by_image = weights or (np.ones(self.y.shape), None, np.ones(n))
        by_class = by_class * self.known  # multi-label only: the calibration channels are the classes
        return by_class, by_class, by_image

    def rank_bins(self, auc_bins):
        if auc_bins is None:
            return None
        if self._rank_bins[0] != auc_bins:  # computed once per run, shared by every pass
            known = self.known if self.known is not None else np.ones(self.p.shape, dtype=bool)
            self._rank_bins = (auc_bins, [rank_bins(self.p[:, c], auc_bins, known[:, c])
                                          for c in range(self.p.shape[1])])
        return self._rank_bins[1]

    def chunk(self) -> int:
        return max(1, CHUNK_ELEMENTS // max(1, self.y.shape[0]))

    def figures_of(self, metrics: GroupMetrics):
        return compute_figures(metrics, self.index, classes=self.classes, attributes=self.attributes,
                               seed_exact=self.seed_exact)

    def weighted(self, unit_weights, dtype, auc_bins, point_only: tuple = ()) -> GroupMetrics:
        stats = fixed_atom_stats(self.units, unit_weights, scores=self.p, y=self.y,
                                 atom_of_image=self.groups.atom_of_image, dtype=dtype, auc_bins=auc_bins,
                                 bins_by_class=self.rank_bins(auc_bins), point_only=point_only)
        return group_metrics(stats, self.masks, kind=self.kind)

    def replicate_free_blocks(self) -> tuple:
        """Feature blocks the bootstrap skips: the equal-width calibration sums (`ece_binned` is reported as a
        point value, for comparison with the peers' numbers) and, outside seed-exact mode, |p - y|."""
        return ("width_sum",) if self.seed_exact else ("width_sum", "abs_error")

    def permuted(self, unit_atoms, auc_bins) -> GroupMetrics:
        stats = variable_atom_stats(self.units, unit_atoms, scores=self.p, y=self.y, dtype=np.float32,
                                    auc_bins=auc_bins, bins_by_class=self.rank_bins(auc_bins),
                                    atom_weights=self.atom_weights if self.reweighting else None)
        return group_metrics(stats, self.masks, kind=self.kind)

    def atom_weights(self, atom: int) -> tuple:
        """(unit features, unit square features, image multipliers) with every image weighted as if in `atom`
        (prevalence reweighting under permutation); kept per atom for the run's permutation chunks."""
        if atom not in self._by_atom:
            multipliers = self.multipliers(np.full(self.y.shape[0], atom))
            features = image_features(self.y, self.p, self.decisions, self.kind, multipliers, self.known)
            self._by_atom[atom] = (*sum_features(self.units.membership, features), multipliers[0])
        return self._by_atom[atom]

    def resampling_key(self, seed: int, n_boot: int) -> str:
        """Identifies the bootstrap draws: same patients, strata, seed and count -> same draws."""
        key = hashlib.sha256()
        key.update(self.patient_index.astype(np.int64).tobytes())
        key.update(self.strata().astype(np.int64).tobytes())
        key.update(f"{seed}:{n_boot}".encode())
        return key.hexdigest()

    def strata(self) -> np.ndarray:
        return self.groups.atom_of_image[self.first_image_of_patient]

    def permutation_strata(self, positions: list[int]) -> np.ndarray | None:
        """Each patient's stratum for shuffling the base attributes at `positions`: the label vector of its
        first image and its values of the other base attributes (None when permutations are not stratified)."""
        if not self.stratify_permutations:
            return None
        first = self.first_image_of_patient
        others = [a for a in range(len(self.groups.base_names)) if a not in positions]
        labels = self.y[first] if self.known is None else np.where(self.known[first], self.y[first], 2)  # 2: masked
        return stratum_codes(labels, self.groups.image_codes[first][:, others])


@dataclass
class PointPass:
    """Exact point values; with binned AUC, the binned figures (compared with permutations) and the shift
    exact - binned of each group and class AUC (added to bootstrap replicates)."""

    metrics: GroupMetrics
    figures: dict
    by_class: dict
    binned_figures: dict
    auc_shift: np.ndarray | float


def point_pass(run: PreparedRun, auc_bins) -> PointPass:
    ones = np.ones((run.units.atom.size, 1))
    metrics = run.weighted(ones, np.float64, None)
    figures, by_class = run.figures_of(metrics)
    if auc_bins is None:
        return PointPass(metrics, figures, by_class, figures, 0.0)
    binned = run.weighted(ones, np.float64, auc_bins)
    shift = np.nan_to_num(metrics.per_class["auc"] - binned.per_class["auc"])
    return PointPass(metrics, figures, by_class, run.figures_of(binned)[0], shift)


@dataclass
class BootstrapPass:
    figures: dict  # name -> [B]
    by_class: dict  # name -> [B, C]
    groups: dict  # group summary name -> [B, G]
    resampling_key: str


def _concat(parts: list[dict]) -> dict:
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]} if parts else {}


def group_summary(metrics: GroupMetrics) -> dict:
    """Per-group metrics ([B, G]) of the group table: macro over classes, or per group."""
    summary = {"count": metrics.count, "accuracy": metrics.accuracy, "utility": metrics.utility(),
               "balanced_accuracy": metrics.balanced_accuracy, "ece": metrics.ece, "ece_binned": metrics.ece_binned,
               "brier": group_brier(metrics)}
    summary.update({name: metrics.macro(name) for name in MACRO})
    return summary


def bootstrap_pass(run: PreparedRun, point: PointPass, *, n_boot: int, seed: int, auc_bins,
                   plan: ResamplingPlan | None) -> BootstrapPass:
    """Patient-clustered, stratified bootstrap replicates of every figure and group metric, in chunks."""
    key = run.resampling_key(seed, n_boot)
    figures, by_class, groups = [], [], []
    if n_boot > 0:
        counts = (plan or ResamplingPlan()).counts(key, run.strata(), n_boot=n_boot, seed=seed)
        for start in range(0, n_boot, run.chunk()):
            metrics = run.weighted(counts[run.units.patient, start:start + run.chunk()], np.float32, auc_bins,
                                   point_only=run.replicate_free_blocks())
            metrics.per_class["auc"] += point.auc_shift
            metrics.ece_binned[:] = np.nan  # a point value only
            figs, per_class = run.figures_of(metrics)
            figures.append(figs)
            by_class.append(per_class)
            groups.append(group_summary(metrics))
    return BootstrapPass(_concat(figures), _concat(by_class), _concat(groups), key)


def _permuted_positions(groups: GroupSet, attribute: str) -> list[int]:
    """Base-attribute positions shuffled together when testing `attribute`."""
    parts = attribute.split("_") if attribute not in groups.base_names else [attribute]
    if "age" in parts and "_age_seed" in groups.base_names:
        parts = parts + ["_age_seed"]
    return [groups.base_names.index(part) for part in parts if part in groups.base_names]


def permutation_tests(run: PreparedRun, point_figures: dict, *, n_perm: int, rng, auc_bins, tested=None) -> dict:
    """Raw permutation p-values of the tested figures (those the figures table tests, or only those in
    `tested`), one permutation set per shuffled attribute."""
    by_attribute: dict[str, list[str]] = {}
    for name in point_figures:
        if tested is not None and name not in tested:
            continue
        attr = permuted_attribute(name)
        if attr is not None and np.isfinite(point_figures[name][0]):
            by_attribute.setdefault(attr, []).append(name)
    p_values = {}
    for attr, names in by_attribute.items():
        positions = _permuted_positions(run.groups, attr)
        if positions:
            collected = _permuted_figures(run, names, positions, n_perm=n_perm, rng=rng, auc_bins=auc_bins)
            for name in names:
                p_values[name] = permutation_p_value(float(point_figures[name][0]), collected[name])
    return p_values


def _permuted_figures(run: PreparedRun, names, positions, *, n_perm: int, rng, auc_bins) -> dict:
    groups = run.groups
    unit_codes = groups.image_codes[run.first_image_of_unit]
    patient_codes = groups.image_codes[run.first_image_of_patient]
    strata = run.permutation_strata(positions)
    collected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    step = max(1, run.chunk() // 4)  # a permutation chunk holds one 0/1 membership matrix per atom
    for start in range(0, n_perm, step):
        size = min(step, n_perm - start)
        shuffled = permuted_patient_codes(patient_codes[:, positions], n_perm=size, rng=rng, strata=strata)
        codes = np.broadcast_to(unit_codes, (size,) + unit_codes.shape).copy()
        codes[:, :, positions] = shuffled[:, run.units.patient, :]
        figs, _ = run.figures_of(run.permuted(atoms_from_codes(codes, groups.radix), auc_bins))
        for name in names:
            collected[name].append(figs[name])
    return {name: np.concatenate(parts) for name, parts in collected.items()}
