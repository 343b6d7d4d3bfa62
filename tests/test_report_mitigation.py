"""`bench report` over a workdir with mitigation runs and probes: the trade-off table says what `bench tradeoff`
says (same pairing, numbers and verdict), the encoding table what the probe files hold, in every format and on
the page; a report without them has neither."""

from __future__ import annotations

import csv
import json

import pytest

from benchmark.cli import main
from tests.protect_fixtures import copy_of, extracted_workdir

FAST = ["--n-boot", "40", "--n-perm", "0", "--formats", "svg"]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    return extracted_workdir(tmp_path_factory, "report-mitigation")


def fit(workdir, heads: str, *extra) -> None:
    assert main(["fit-heads", "--model", "tiny-clip", "--task", "nofinding", "--heads", heads, "--workdir",
                 str(workdir), *extra]) == 0


def report(workdir, out, *extra) -> str:
    assert main(["report", "--task", "nofinding", "--workdir", str(workdir), "--out", str(out), *FAST, *extra]) == 0
    return (out / "report.html").read_text()


def rows(path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def tradeoff_json(workdir, capsys) -> dict:
    capsys.readouterr()
    assert main(["tradeoff", "--task", "nofinding", "--workdir", str(workdir), "--n-boot", "40", "--format", "json"]) == 0
    (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
    return comparison


def check_tradeoff_row(row: dict, expected: dict) -> None:
    assert (row["protect"], row["verdict"], row["verdict says"]) == (expected["protect"], expected["verdict"],
                                                                     expected["meaning"])
    assert row["run"].startswith("tiny-clip linear-reweight") and row["plain run"].startswith("tiny-clip linear")
    for name in ("gap_plain", "gap_mitigated", "gap_change", "worst_plain", "worst_mitigated", "worst_change",
                 "best_change"):
        figure = expected[name]
        assert float(row[name]) == pytest.approx(figure["value"], abs=1e-12), name
        assert float(row[f"{name}_low"]) == pytest.approx(figure["ci"][0], abs=1e-12), name
        assert float(row[f"{name}_high"]) == pytest.approx(figure["ci"][1], abs=1e-12), name


def test_a_report_with_a_mitigation_pair_and_probes_shows_the_tradeoff_and_the_encoding(extracted, tmp_path, capsys,
                                                                                        monkeypatch):
    workdir = copy_of(extracted, tmp_path)
    fit(workdir, "linear,linear-reweight", "--protect", "sex")
    assert main(["probe", "--model", "tiny-clip", "--attribute", "sex,age", "--n-boot", "50",
                 "--workdir", str(workdir)]) == 0
    expected = tradeoff_json(workdir, capsys)
    out = tmp_path / "report"
    page = report(workdir, out)
    for name in ("tradeoffs", "encoding"):
        assert all((out / "tables" / f"{name}.{fmt}").is_file() for fmt in ("md", "csv", "tex"))
        assert f'data-table="{name}"' in page
    assert 'id="mitigation"' in page and 'id="encoding"' in page and expected["meaning"] in page

    (row,) = rows(out / "tables" / "tradeoffs.csv")
    check_tradeoff_row(row, expected)  # evaluated again for sex alone, as `bench tradeoff` does
    assert expected["meaning"] in (out / "tables" / "tradeoffs.md").read_text()
    assert r"\toprule" in (out / "tables" / "tradeoffs.tex").read_text()

    probes = {json.loads(p.read_text())["attribute"]: json.loads(p.read_text())
              for p in (workdir / "probes" / "tiny-clip").glob("*.json")}
    (encoding,) = rows(out / "tables" / "encoding.csv")
    assert encoding["encoder"] == "tiny-clip" and encoding["store"] == probes["sex"]["store_identity"][:12]
    for attribute in ("sex", "age"):
        auc = probes[attribute]["auc"]
        assert float(encoding[f"{attribute}_auc"]) == pytest.approx(auc["value"], abs=1e-12)
        assert float(encoding[f"{attribute}_auc_low"]) == pytest.approx(auc["ci"][0], abs=1e-12)
        assert float(encoding[f"{attribute}_auc_high"]) == pytest.approx(auc["ci"][1], abs=1e-12)

    # evaluated for sex alone, the leaderboard's reports are the ones `bench tradeoff` makes: reused, same numbers
    import benchmark.leaderboard.tradeoff as tradeoff

    reused, original = [], tradeoff.reusable_reports
    monkeypatch.setattr(tradeoff, "reusable_reports", lambda board: reused.append(original(board)) or reused[-1])
    report(workdir, tmp_path / "by-sex", "--groups", "sex")
    assert [sorted(attribute for _, attribute in found) for found in reused] == [["sex", "sex"]]
    (row,) = rows(tmp_path / "by-sex" / "tables" / "tradeoffs.csv")
    check_tradeoff_row(row, expected)


def test_a_report_without_mitigation_runs_or_probes_has_neither_table(extracted, tmp_path):
    workdir = copy_of(extracted, tmp_path)
    fit(workdir, "linear")
    out = tmp_path / "report"
    page = report(workdir, out)
    names = {path.stem for path in (out / "tables").iterdir()}
    assert "leaderboard" in names and not names & {"tradeoffs", "encoding"}
    assert 'id="mitigation"' not in page and 'id="encoding"' not in page
    document = json.loads((out / "report-data.json").read_text())
    assert document["tradeoffs"] == {"comparisons": [], "notes": []} and document["probes"]["encoders"] == []
