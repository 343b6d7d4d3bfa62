"""The report's figures are tested for what they show, against the leaderboard's JSON: one point per run on the
plane, the Pareto front through exactly the non-dominated runs, the forest plot's values, the heatmap's cells and
marks, the method order, rank intervals, seeds' mean +- SD, curves that agree with the group AUCs."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from benchmark.report.data import ReportData
from benchmark.report.figures import FIGURES
from benchmark.report.options import ReportOptions
from benchmark.report.style import style
from report_fakes import grid_document


@pytest.fixture(scope="module")
def single():
    document, board, runs = grid_document("single")
    return ReportData.from_json(json.loads(json.dumps(document))), document


@pytest.fixture(scope="module")
def multi():
    document, board, runs = grid_document("multi")
    return ReportData.from_json(json.loads(json.dumps(document))), document


def drawn(data, name: str, options=ReportOptions()):
    spec = next(spec for spec in FIGURES if spec.name == name)
    assert spec.module.needs(data, options) is None
    with style():
        return spec.module.draw(data, options)


def by_gid(figure, prefix: str) -> list:
    return [artist for artist in figure.findobj(lambda a: str(a.get_gid() or "").startswith(prefix))]


def with_gid(figure, gid: str) -> list:
    return [artist for artist in figure.findobj(lambda a: a.get_gid() == gid)]


def json_runs(document) -> dict:
    return {run["name"]: run for run in document["leaderboard"]["runs"]}


def test_the_plane_has_one_point_per_run_at_the_jsons_values(single):
    data, document = single
    figure = drawn(data, "plane")
    points = [(float(x), float(y)) for line in by_gid(figure, "points-") for x, y in zip(line.get_xdata(), line.get_ydata())]
    expected = [(run["figures"]["utility"]["value"], run["figures"]["worst_group_utility"]["value"])
                for run in document["leaderboard"]["runs"]]
    assert len(points) == len(expected) == 6
    np.testing.assert_allclose(sorted(points), sorted(expected))


def _dominated(point, others) -> bool:
    return any(o[0] >= point[0] and o[1] >= point[1] and o != point for o in others)


def test_the_pareto_front_joins_exactly_the_non_dominated_runs(single):
    data, document = single
    runs = document["leaderboard"]["runs"]
    points = {run["name"]: (run["figures"]["utility"]["value"], run["figures"]["worst_group_utility"]["value"])
              for run in runs}
    non_dominated = {name for name, p in points.items() if not _dominated(p, list(points.values()))}
    assert non_dominated == {run["name"] for run in runs if run["pareto"]} and len(non_dominated) >= 2
    front, = by_gid(drawn(data, "plane"), "pareto-front")
    np.testing.assert_allclose(sorted(zip(front.get_xdata(), front.get_ydata())),
                               sorted(points[name] for name in non_dominated))


def test_a_gap_on_the_plane_draws_the_front_of_utility_and_the_gap(single):
    data, document = single
    options = ReportOptions(plane_y="f1_gap_sex")
    front, = by_gid(drawn(data, "plane", options), "pareto-front")
    keys = {run["name"]: (run["figures"]["utility"]["value"], -abs(run["figures"]["f1_gap_sex"]["value"]))
            for run in document["leaderboard"]["runs"]}
    expected = {name for name, p in keys.items() if not _dominated(p, list(keys.values()))}
    runs = json_runs(document)
    assert sorted(front.get_xdata()) == pytest.approx(sorted(runs[name]["figures"]["utility"]["value"] for name in expected))


def test_the_forest_plot_shows_the_jsons_group_values_and_the_overall_line(multi):
    data, document = multi
    figure = drawn(data, "forest")
    runs = json_runs(document)
    for run in data.runs[:ReportOptions().max_runs]:
        groups = runs[run.name]["groups"]
        for attribute in ("sex", "age", "sex_age"):
            line, = with_gid(figure, f"forest-{run.name}-{attribute}")
            expected = [row["metrics"]["utility"]["value"] for row in groups[attribute].values()]
            assert list(line.get_xdata()) == pytest.approx(expected)
        overall, = with_gid(figure, f"overall-{run.name}")
        assert overall.get_xdata()[0] == pytest.approx(runs[run.name]["figures"]["utility"]["value"])


def test_the_heatmap_shows_the_per_class_differences_and_marks_the_planted_effect_only(single):
    from benchmark.report.figures import heatmap

    data, document = single
    cells = heatmap.cells(data, ReportOptions())
    assert set(cells) == {"sex", "age"}
    runs, values, marked = cells["sex"]
    for r, run in enumerate(runs):
        for c, cls in enumerate(data.classes):
            assert values[r, c] == pytest.approx(document["by_class"][run.name]["f1_diff_sex"][cls]["value"])
    planted = [r for r, run in enumerate(runs) if run.name == "enc-a-full-s0"][0]  # women's positives pushed down
    assert marked[planted].all() and (values[planted] > 0).all()  # M - F > 0 in every class
    assert not cells["age"][2].any()  # nothing planted by age
    boxes = by_gid(drawn(data, "heatmap"), "significant-")
    assert len(boxes) == sum(int(m.sum()) for _, _, m in cells.values())


def test_the_method_progression_keeps_the_known_order_and_puts_unknown_methods_last(multi):
    data, _ = multi
    figure = drawn(data, "progression")
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["zeroshot", "linear", "full", "fairmix"]
    line, = by_gid(figure, "progression-accuracy-enc-a")
    a = {run.method: run for run in data.runs if run.encoder == "enc-a"}
    seeds = [run.figure("accuracy").value for run in data.runs if run.encoder == "enc-a" and run.method == "linear"]
    assert list(line.get_ydata()) == pytest.approx([a["zeroshot"].figure("accuracy").value, np.mean(seeds),
                                                    a["full"].figure("accuracy").value])


def test_rank_uncertainty_draws_the_leaderboards_intervals(multi):
    data, document = multi
    figure = drawn(data, "ranks")
    intervals, = by_gid(figure, "rank-intervals")
    segments = [tuple(np.asarray(s)[:, 0]) for s in intervals.get_segments()]
    ranked = [run for run in document["leaderboard"]["runs"] if run["rank"] is not None]
    assert segments == [tuple(map(float, run["rank_interval"])) for run in ranked]
    widths = [patch.get_width() for patch in figure.axes[1].patches]
    assert widths == pytest.approx([run["p_first"] for run in ranked]) and sum(widths) == pytest.approx(1.0)


def test_seeds_show_mean_and_sd_over_the_repeats(multi):
    data, _ = multi
    figure = drawn(data, "seeds")
    values = [run.figure("utility").value for run in data.runs if run.encoder == "enc-a" and run.method == "linear"]
    container, = [c for ax in figure.axes for c in ax.containers if c.lines[0].get_gid() == "seeds-utility-enc-a-linear"]
    assert container.lines[0].get_xdata()[0] == pytest.approx(np.mean(values))
    (low, _), (high, _) = container.lines[2][0].get_segments()[0]
    assert (high - low) / 2 == pytest.approx(np.std(values, ddof=1)) and high > low


def test_group_roc_curves_enclose_about_the_groups_auc_and_reliability_counts_every_channel(multi):
    data, _ = multi
    curves = data.curves
    run = data.run(curves["run"])
    fpr = np.array(curves["fpr"])
    for group in curves["groups"]:
        if group["attribute"] == "overall":
            continue
        area = float(np.sum(np.diff(fpr) * np.array(group["roc"])[1:]))  # the upper step, as drawn
        auc = run.groups[group["attribute"]][group["level"]]["metrics"]["auc"].value
        assert area == pytest.approx(auc, abs=0.03)
        assert sum(group["reliability"]["count"]) == group["count"] * len(data.classes)  # every class, pooled
    figure = drawn(data, "calibration")
    assert len(by_gid(figure, "roc-sex-")) == 2 and len(by_gid(figure, "reliability-age-")) == 2


def test_figures_without_what_they_need_are_left_out_with_the_reason(single):
    import copy

    data, document = single
    alone = copy.deepcopy(document)
    alone["leaderboard"]["repeats"] = []
    for run in alone["leaderboard"]["runs"]:
        run["rank_interval"] = None
    view = ReportData.from_json(alone)
    reasons = {spec.name: spec.module.needs(view, ReportOptions()) for spec in FIGURES}
    assert "several seeds" in reasons["seeds"] and "rank intervals" in reasons["ranks"]
    assert all(reasons[name] is None for name in ("plane", "forest", "heatmap", "progression", "calibration"))


def test_every_figure_is_written_as_svg_png_at_300_dpi_and_pdf_without_touching_global_settings(single, tmp_path):
    import matplotlib
    from PIL import Image

    from benchmark.report.figures import render

    data, _ = single
    before = dict(matplotlib.rcParams)
    rendered = render(data, ReportOptions(), tmp_path, workers=1)
    assert dict(matplotlib.rcParams) == before
    for item in rendered:
        assert set(item.paths) == {"svg", "png", "pdf"}, item.spec.name
        assert item.paths["pdf"].read_bytes().startswith(b"%PDF")
        assert not re.search(r'(href|src)="https?:|url\(https?:', item.svg)  # nothing fetched from the network
        dpi = Image.open(item.paths["png"]).info["dpi"]
        assert math.isclose(dpi[0], 300, abs_tol=0.5)


def test_the_palette_is_colour_blind_safe_and_tells_runs_apart_without_colour():
    from benchmark.report.style import LINE_STYLES, MARKERS, OKABE_ITO, Palette

    assert OKABE_ITO[:7] == ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
    palette = Palette([f"e{i}" for i in range(8)], [f"m{i}" for i in range(len(MARKERS))])
    assert len({str(palette.line(e)) for e in palette.encoders}) == len(LINE_STYLES) == 8
    assert len({palette.marker(m) for m in palette.methods}) == len(MARKERS)


def test_figures_drawn_in_worker_processes_are_the_same_files(single, tmp_path):
    from benchmark.report.figures import render

    data, _ = single
    options = ReportOptions(formats=("svg",))
    alone = {r.spec.name: r.svg for r in render(data, options, tmp_path / "one", workers=1)}
    shared = {r.spec.name: r.svg for r in render(data, options, tmp_path / "two", workers=2)}
    assert alone == shared and len(alone) == 7
