"""Small leaderboards for the report's tests: prediction frames with planted effects, run records with encoders,
methods and seeds, built and evaluated by the leaderboard (the report's one evaluation)."""

from __future__ import annotations

import numpy as np
import polars as pl

CLASSES = ("Effusion", "Edema", "Atelectasis")


def prediction_frame(seed: int, *, female_penalty: float = 0.0, n: int = 360, skill: float = 0.45,
                     kind: str = "multi") -> pl.DataFrame:
    """Test and val rows; women's positive scores pushed down by `female_penalty` (an effect of sex only)."""
    rng = np.random.default_rng(seed)
    patient = rng.integers(0, n // 2, n)
    sex = np.where(patient % 2 == 0, "F", "M")
    age = (30 + (patient * 7) % 55).astype(float)
    if kind == "single":
        label = rng.integers(0, len(CLASSES), n)
        y = np.eye(len(CLASSES), dtype=np.int8)[label]
        logits = skill * 4 * y + rng.normal(0, 1, y.shape) - female_penalty * 4 * (sex == "F")[:, None] * y
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    else:
        y = (rng.random((n, len(CLASSES))) < 0.35).astype(np.int8)
        p = np.clip(skill * y + (1 - skill) * rng.random(y.shape) - female_penalty * (sex == "F")[:, None] * y, 0, 1)
    columns = {"image_id": [f"img{i}" for i in range(n)], "patient_id": [f"pat{x}" for x in patient], "sex": sex,
               "age": age, "split": np.where(np.arange(n) % 4 == 0, "val", "test")}
    columns.update({f"y_{c}": y[:, j] for j, c in enumerate(CLASSES)})
    columns.update({f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)})
    return pl.DataFrame(columns)


def run_input(name: str, encoder: str, method: str, seed: int | None, frame: pl.DataFrame, *, kind: str = "multi"):
    from benchmark.core.runs import RunRecord
    from benchmark.leaderboard import RunInput

    record = RunRecord(run_id=name, encoder=encoder, method=method, task="fake", task_kind=kind, classes=CLASSES,
                       seed=seed, weights_tag="random-init", dataset=None)
    return RunInput(name=name, method=method, encoder=encoder, frame=frame, record=record, source=f"memory:{name}",
                    block="fake", seed=seed, base_name=name)


GRID = (  # (encoder, method, seed, female penalty, skill)
    ("enc-a", "zeroshot", 0, 0.0, 0.03),
    ("enc-a", "linear", 0, 0.0, 0.16),
    ("enc-a", "linear", 1, 0.02, 0.16),
    ("enc-a", "full", 0, 0.3, 0.40),
    ("enc-b", "fairmix", 0, 0.0, 0.20),  # a method the report does not know: after the known ones
    ("enc-b", "linear", 0, 0.1, 0.25),
)


def grid_runs(kind: str = "multi", grid=GRID) -> list:
    return [run_input(f"{encoder}-{method}-s{seed}", encoder, method, seed,
                      prediction_frame(10 + i, female_penalty=penalty, skill=skill, kind=kind), kind=kind)
            for i, (encoder, method, seed, penalty, skill) in enumerate(grid)]


def grid_document(kind: str = "multi", *, n_boot: int = 80, n_perm: int = 40, **report) -> tuple:
    """(report data document, the Leaderboard, the runs) of the grid."""
    from benchmark import leaderboard
    from benchmark.report.data import report_document

    runs = grid_runs(kind)
    board = leaderboard.build(runs, block="fake", n_boot=n_boot, n_perm=n_perm, seed=0)
    return report_document(board, runs, command=["report", "--test"], **report), board, runs
