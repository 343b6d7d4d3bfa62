"""The report page in a real browser (headless Chromium): it loads without an error and without asking the
network for anything, every figure is there and visibly drawn (pixels that are not white inside its box), the
ranked table has one row per run, and the page prints.

Chromium is Debian's `chromium` package (`.ci/run` installs it). Without it this test fails in CI (CI set) and is
skipped elsewhere, saying so loudly."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import pytest

from benchmark.report import ReportOptions, write_report
from browser import Chromium, find_chromium
from report_fakes import grid_document

MEASURE = """(() => {
  const figures = [...document.querySelectorAll('figure[data-figure]')].map(f => {
    const svg = f.querySelector('svg');
    const r = svg ? svg.getBoundingClientRect() : null;
    return {name: f.dataset.figure, missing: f.dataset.missing === 'true',
            box: r ? {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height} : null};
  });
  return {figures: figures, rows: document.querySelectorAll('#ranked-table tbody tr').length,
          banner: (document.querySelector('#data-warning') || {}).innerText || '',
          reason: (document.querySelector('#ranking-reason') || {}).innerText || '',
          command: (document.querySelector('#command-line') || {}).innerText || ''};
})()"""
MISSING = ("Chromium is not installed: the report's browser check did not run. Install Debian's `chromium` "
           "(apt-get install chromium; .ci/run does it).")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> str:
    """Chromium's path; without it, fail in CI and skip (with a warning) elsewhere."""
    path = find_chromium()
    if path is None:
        if in_ci():
            pytest.fail(MISSING)
        warnings.warn(MISSING)
        pytest.skip(MISSING)
    return path


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


def test_without_chromium_ci_fails_and_a_local_run_skips_loudly(monkeypatch):
    import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="Chromium is not installed"):
        require_chromium()
    monkeypatch.setenv("CI", "")
    with pytest.warns(UserWarning, match="Chromium is not installed"), pytest.raises(pytest.skip.Exception):
        require_chromium()


def drawn_share(screenshot, box) -> float:
    """Share of the pixels inside `box` that are not (nearly) white."""
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(screenshot)).convert("L"))
    x, y, w, h = (int(round(box[k])) for k in ("x", "y", "w", "h"))
    region = image[y:y + h, x:x + w]
    assert region.size > 0.9 * w * h, "the figure's box is outside the screenshot"
    return float(np.mean(region < 235))


def test_the_page_loads_offline_without_errors_and_shows_every_figure_and_run(chromium, tmp_path):
    from benchmark.report.figures import FIGURES

    document, board, _ = grid_document("single", n_boot=60, n_perm=0)
    document["provenance"]["synthetic_datasets"] = ["nih"]  # as a synthetic dataset's provenance says
    result = write_report(document, tmp_path / "report", ReportOptions(formats=("svg",)), workers=1)
    with Chromium.start(chromium, tmp_path / "profile") as browser:
        page = browser.open(result.page, MEASURE)
    (tmp_path / "screenshot.png").write_bytes(page.screenshot)

    assert page.errors == []
    assert {url.split(":", 1)[0] for url in page.requests} <= {"file", "data"}, page.requests
    figures = {f["name"]: f for f in page.measures["figures"]}
    assert list(figures) == [spec.name for spec in FIGURES]
    for name, figure in figures.items():
        assert not figure["missing"], name
        assert figure["box"]["w"] > 300 and figure["box"]["h"] > 150, name
        assert drawn_share(page.screenshot, figure["box"]) > 0.02, f"{name} looks blank"
    assert page.measures["rows"] == len(board.entries) == 6
    assert "SYNTHETIC DATA" in page.measures["banner"] and "RANDOM WEIGHTS" in page.measures["banner"]
    assert "worst-group utility" in page.measures["reason"] and page.measures["command"].startswith("bench report")
    assert page.pdf.startswith(b"%PDF") and len(page.pdf) > 50_000


def test_a_left_out_figure_says_why_on_the_page(chromium, tmp_path):
    document, _, _ = grid_document("multi", n_boot=0, n_perm=0)
    result = write_report(json.loads(json.dumps(document)), tmp_path / "report", ReportOptions(formats=("svg",)),
                          workers=1)
    with Chromium.start(chromium, tmp_path / "profile") as browser:
        page = browser.open(result.page, MEASURE)
    figures = {f["name"]: f for f in page.measures["figures"]}
    assert figures["ranks"]["missing"] and figures["ranks"]["box"] is None  # no replicates: no rank intervals
    assert not figures["plane"]["missing"] and page.errors == []
    assert "Not drawn: the leaderboard has no rank intervals" in Path(result.page).read_text()
