"""The leaderboard's verdict: the chance gate (by simulation), Pareto front, DTO and rank intervals against
independent computations, and ranking by any figure in the direction of the figures table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from benchmark import leaderboard
from benchmark.core.errors import BenchError
from benchmark.core.runs import RunRecord
from benchmark.leaderboard import RunInput
from benchmark.leaderboard.ranking import UTILITY, WORST


def frame_of(y, p, sex, age, patients=None) -> pl.DataFrame:
    n = y.shape[0]
    columns = {"image_id": [f"i{i}" for i in range(n)],
               "patient_id": [f"p{i}" for i in (range(n) if patients is None else patients)],
               "sex": list(sex), "age": np.asarray(age, dtype=float), "split": ["test"] * n}
    columns.update({f"y_c{c}": y[:, c].astype(np.int8) for c in range(y.shape[1])})
    columns.update({f"p_c{c}": p[:, c] for c in range(y.shape[1])})
    return pl.DataFrame(columns)


def run_of(name: str, frame: pl.DataFrame, **record) -> RunInput:
    record = RunRecord(**{"run_id": name, "encoder": "external", "method": "external", "task": "", **record})
    return RunInput(name=name, method=record.method, encoder=record.encoder, frame=frame, record=record,
                    source=name, seed=record.seed, base_name=name.partition("@")[0])


def test_the_chance_gate_never_ranks_a_constant_predictor_above_a_run_with_skill():
    rng = np.random.default_rng(0)
    above_without_gate = 0
    for dataset in range(30):
        n = 120  # four cells of ~30 images, ~6 positives each: a cell's AUC is noisy
        y = (rng.random((n, 1)) < 0.2).astype(np.int8)
        sex, age = rng.choice(["F", "M"], n), rng.uniform(20, 90, n)
        skilled = 1 / (1 + np.exp(-(0.8 * (2 * y - 1) + rng.normal(0, 1, (n, 1)))))
        runs = [run_of("constant", frame_of(y, np.full((n, 1), 0.3), sex, age)),
                run_of("skilled", frame_of(y, skilled, sex, age))]
        board = leaderboard.build(runs, n_boot=100, n_perm=0, seed=dataset)
        names = [entry.run.name for entry in board]
        assert names.index("constant") > names.index("skilled"), dataset
        constant = board[names.index("constant")]
        assert constant.chance and constant.rank is None and constant.p_first is None
        skilled_entry = board[names.index("skilled")]
        above_without_gate += skilled_entry.value(WORST) < constant.value(WORST)
    assert above_without_gate > 0  # without the gate the constant predictor would sometimes have come first


def test_single_label_chance_is_one_over_k_balanced_accuracy():
    rng = np.random.default_rng(1)
    n, k = 200, 4
    labels = rng.integers(0, k, n)
    y = np.eye(k, dtype=np.int8)[labels]
    always_first = np.tile([0.7, 0.1, 0.1, 0.1], (n, 1))
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 2.0
    good = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sex, age = rng.choice(["F", "M"], n), rng.uniform(20, 90, n)
    board = leaderboard.build([run_of("always-c0", frame_of(y, always_first, sex, age)),
                               run_of("good", frame_of(y, good, sex, age))], n_boot=50, n_perm=0)
    assert [e.run.name for e in board] == ["good", "always-c0"]
    assert board[1].value(UTILITY) == pytest.approx(1 / k) and board[1].chance


def three_runs(seed: int = 2, n: int = 400):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.3).astype(np.int8)
    sex, age = rng.choice(["F", "M"], n), rng.uniform(20, 90, n)
    female = (sex == "F")[:, None]
    p = {name: 1 / (1 + np.exp(-(strength * (2 * y - 1) - penalty * female * y + rng.normal(0, 1, y.shape))))
         for name, strength, penalty in (("strong", 1.5, 1.2), ("even", 1.1, 0.0), ("weak", 0.6, 0.0))}
    return y, sex, age, p


def test_pareto_front_and_dto_match_a_computation_by_hand():
    y, sex, age, scores = three_runs()
    board = leaderboard.build([run_of(name, frame_of(y, p, sex, age)) for name, p in scores.items()],
                              n_boot=50, n_perm=0)
    cells = [(sex == s) & ((age >= 60) == old) for s in ("F", "M") for old in (False, True)]
    cell_auc = {name: np.array([np.mean([roc_auc_score(y[m, c], p[m, c]) for c in range(2)]) for m in cells])
                for name, p in scores.items()}
    utopia = np.max(np.stack(list(cell_auc.values())), axis=0)
    points = {name: (np.mean([roc_auc_score(y[:, c], p[:, c]) for c in range(2)]), cell_auc[name].min())
              for name, p in scores.items()}
    for entry in board:
        name = entry.run.name
        dto = np.sqrt(np.sum((cell_auc[name] / utopia - 1) ** 2))
        assert entry.value("dto") == pytest.approx(dto, abs=1e-9)
        assert entry.value(WORST) == pytest.approx(points[name][1], abs=1e-9)
        dominated = any(o[0] >= points[name][0] and o[1] >= points[name][1] and o != points[name]
                        for other, o in points.items() if other != name)
        assert entry.pareto == (not dominated)
    assert board.entry("weak").pareto is False


def test_rank_intervals_and_p_first_come_from_the_shared_replicates():
    y, sex, age, scores = three_runs(seed=3)
    board = leaderboard.build([run_of(name, frame_of(y, p, sex, age)) for name, p in scores.items()],
                              n_boot=200, n_perm=0)
    worst = np.stack([e.replicates(WORST) for e in board.entries])
    utility = np.stack([e.replicates(UTILITY) for e in board.entries])
    ranks = np.empty_like(worst)
    for b in range(worst.shape[1]):  # by hand: sort each replicate by (-worst, -utility)
        order = sorted(range(len(board)), key=lambda r: (-worst[r, b], -utility[r, b]))
        ranks[order, b] = np.arange(len(board))
    for row, entry in zip(ranks, board.entries):
        assert entry.p_first == pytest.approx(np.mean(row == 0))
        assert entry.rank_interval == (int(np.quantile(row, 0.025, method="lower")) + 1,
                                       int(np.quantile(row, 0.975, method="higher")) + 1)
    assert sum(e.p_first for e in board) == pytest.approx(1.0)
    assert board.entry("weak").rank_interval == (3, 3)


@pytest.mark.parametrize("rank_by", ["dto", "f1_gap_sex", "utility", "ece"])
def test_rank_by_any_figure_uses_the_direction_of_the_figures_table(rank_by):
    from fairness.registry import sort_key

    y, sex, age, scores = three_runs(seed=4)
    board = leaderboard.build([run_of(name, frame_of(y, p, sex, age)) for name, p in scores.items()],
                              rank_by=rank_by, n_boot=30, n_perm=0)
    keys = [sort_key(rank_by, e.value(rank_by)) for e in board.ranked]
    assert keys == sorted(keys)


def test_repeats_group_runs_that_differ_only_in_seed():
    y, sex, age, scores = three_runs(seed=5)
    frame = frame_of(y, scores["even"], sex, age)
    common = dict(encoder="tiny-clip", method="linear", task="nih14", hyperparameters={"C": 1.0, "seed": 0})
    runs = [run_of(f"run{seed}", frame_of(y, np.clip(scores["even"] + 0.01 * seed, 0, 1), sex, age), seed=seed,
                   created=f"2026-01-0{seed + 1}", chosen={"C": seed}, details={"fit_seconds": seed},
                   **{**common, "hyperparameters": {"C": 1.0, "seed": seed}})
            for seed in range(3)]
    runs.append(run_of("other-C", frame, seed=0, **{**common, "hyperparameters": {"C": 10.0, "seed": 0}}))
    runs.append(run_of("other-experiment", frame, seed=1, details={"experiment": "ablation"}, **common))
    board = leaderboard.build(runs, n_boot=20, n_perm=0)
    (group,) = board.repeats
    assert sorted(e.run.name for e in group.members) == ["run0", "run1", "run2"]
    summary = group.summary("worst_group_utility")
    values = [board.entry(f"run{seed}").value("worst_group_utility") for seed in group.seeds]
    assert summary["values"] == values and summary["mean"] == pytest.approx(np.mean(values))
    assert summary["sd"] == pytest.approx(np.std(values, ddof=1))
    again = run_of("run1-again", runs[1].frame, seed=1, created="2026-02-01", **{**common, "hyperparameters": {"C": 1.0, "seed": 1}})
    board = leaderboard.build(runs + [again], n_boot=20, n_perm=0)  # a head fitted again: one run per seed counts
    (group,) = board.repeats
    assert sorted(e.run.name for e in group.members) == ["run0", "run1-again", "run2"]
    alone = [run_of(f"same{k}", frame, seed=0, created=f"2026-03-0{k + 1}", **common) for k in range(3)]
    assert leaderboard.build(alone, n_boot=20, n_perm=0).repeats == []  # one seed: no repeats at all


def test_outside_files_name_their_seed_and_block():
    name, path, block, seed = leaderboard.parse_prediction_spec("chexpert:mine@3=preds.csv")
    assert (name, path.name, block, seed) == ("mine@3", "preds.csv", "chexpert", 3)
    assert leaderboard.parse_prediction_spec("mine=a=b.csv")[1].name == "a=b.csv"
    for bad in ("mine@x=preds.csv", "=preds.csv", "mine@1"):
        with pytest.raises(BenchError) as error:
            leaderboard.parse_prediction_spec(bad)
        assert str(error.value) == leaderboard.ERR_SPEC.format(spec=bad)


def test_runs_with_different_attributes_are_all_ranked_on_the_groups_they_share():
    y, sex, age, p = three_runs()
    runs = [run_of("strong", frame_of(y, p["strong"], sex, age)),
            run_of("even", frame_of(y, p["even"], [None] * len(sex), age))]  # a file without sex values
    board = leaderboard.build(runs, n_boot=40, n_perm=0)
    assert all(entry.report.options["attributes"] == ["age"] for entry in board.entries)
    assert any("even has no values for sex" in note and "(age)" in note for note in board.notes)
    alone = leaderboard.build(runs[:1], n_boot=40, n_perm=0, attributes="age")
    assert board.entry("strong").report.figures[WORST].value == alone.entry("strong").report.figures[WORST].value
    same = leaderboard.build(runs[:1] + [run_of("even", frame_of(y, p["even"], sex, age))], n_boot=40, n_perm=0)
    assert all("sex_age" in entry.report.options["attributes"] for entry in same.entries)


def test_the_permutation_advice_names_enough_permutations():
    from benchmark.leaderboard.tables import footnotes

    y, sex, age, p = three_runs(n=200)
    runs = [run_of(name, frame_of(y, p[name], sex, age)) for name in ("strong", "even")]
    board = leaderboard.build(runs, n_boot=20, n_perm=49)
    [advice] = [note for note in footnotes(board, 0.05) if "use --n-perm" in note]
    needed = int(advice.split("use --n-perm ")[1].split()[0])
    m = board.family_size
    assert m / (needed + 1) < 0.05 <= m / needed


def test_the_legend_says_what_was_not_computed():
    from benchmark.leaderboard.tables import legend

    y, sex, age, p = three_runs(n=200)
    runs = [run_of(name, frame_of(y, p[name], sex, age)) for name in ("strong", "even")]
    bare = legend(leaderboard.build(runs, n_boot=0, n_perm=0), 0.05)
    assert "no permutation tests (--n-perm 0)" in bare and "no bootstrap (--n-boot 0)" in bare
    assert "permutations, alpha" not in bare and "replicates]" not in bare
    full = legend(leaderboard.build(runs, n_boot=20, n_perm=19), 0.05)
    assert "19 permutations, alpha 0.05" in full and "20 replicates]" in full and "--n-boot 0" not in full
