"""Prediction files with masked labels: a null (blank) y_<class> is a masked entry of a multi-label task; a
single-label file cannot have one; files without nulls read as before."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.core.errors import BenchError
from benchmark.core.runs import read_predictions
from benchmark.leaderboard.loading import RunInput, evaluate_run

HEADER = "image_id,patient_id,sex,split,y_a,y_b,p_a,p_b\n"


def _rows(n: int, blank: bool) -> str:
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        split = "val" if i < n // 3 else "test"
        y_a = "" if blank and i % 5 == 0 else str(int(rng.random() < 0.4))
        y_b = str(int(rng.random() < 0.5))
        lines.append(f"i{i},p{i},{'FM'[i % 2]},{split},{y_a},{y_b},{rng.random():.3f},{rng.random():.3f}")
    return HEADER + "\n".join(lines) + "\n"


def test_blank_labels_are_masked_in_a_multi_label_file(tmp_path):
    path = tmp_path / "masked.csv"
    path.write_text(_rows(60, blank=True))
    frame, record = read_predictions(path)
    assert record.task_kind == "multi" and frame["y_a"].null_count() == 12
    report = evaluate_run(RunInput("m", "external", "external", frame, record, str(path)), n_boot=0, n_perm=0,
                          attributes=("sex",))
    assert report.options["masked"] == {"a": 8, "b": 0}
    assert report.groups[0].count == 40  # every test image kept


def test_old_files_read_as_before_and_single_label_cannot_mask(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(_rows(30, blank=False))
    frame, _ = read_predictions(plain)
    assert frame["y_a"].dtype.is_integer() and frame["y_a"].null_count() == 0
    single = tmp_path / "single.csv"
    single.write_text(HEADER + "i0,p0,F,test,1,0,0.7,0.3\ni1,p1,M,test,,1,0.4,0.6\n")
    frame, record = read_predictions(single)
    assert record.task_kind == "multi"  # a blank label makes the file multi-label, never single
    from benchmark.core.predictions import check_single_label_sums

    with pytest.raises(BenchError, match=r"label 'y_a' is empty \(masked\) at row 1 .*only multi-label tasks mask"):
        check_single_label_sums(frame, source="single.csv")


def test_report_curves_leave_masked_entries_out():
    from benchmark.report.curves import N_BINS, macro_roc, reliability

    rng = np.random.default_rng(1)
    y = (rng.random((80, 2)) < 0.4).astype(np.float64)
    p = rng.random((80, 2))
    masked = y.copy()
    masked[::4, 0] = np.nan
    keep = ~np.isnan(masked[:, 0])
    assert macro_roc(masked, p) == pytest.approx(np.mean([macro_roc(y[keep][:, :1], p[keep][:, :1]),
                                                          macro_roc(y[:, 1:], p[:, 1:])], axis=0), abs=1e-5)
    bins = np.minimum((p * N_BINS).astype(int), N_BINS - 1)
    counts = reliability(p, masked, bins, np.ones(80, dtype=bool))["count"]
    assert sum(counts) == 160 - 20
